"""A real POP3 client session (Python's standard poplib) for mailmoat's tests.

Usage: python3 pop3_session.py HOST PORT TIMEOUT_SECONDS JSON_STEPS
Steps: ["user", "alice"], ["pass", "secret"], ["stat"], ["list"], ["uidl"],
["retr", 1], ["top", 1, 0], ["dele", 1], ["capa"], ["quit"].
Prints one JSON object: {"results": [...]} where each result is
{"ok": true, "response": ..., "data": base64 of the CRLF-joined lines or null}
or {"ok": false, "error": "..."}; the session stops at the first error unless the
step is marked with a trailing "may-fail".
"""
import base64
import json
import poplib
import sys


def main():
    host, port, timeout, steps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
    results = []
    try:
        box = poplib.POP3(host, port, timeout=timeout)
        results.append({"ok": True, "response": box.getwelcome().decode("latin1"), "data": None})
    except Exception as error:  # noqa: BLE001 - every failure is reported to the test
        print(json.dumps({"results": [{"ok": False, "error": f"{type(error).__name__}: {error}"}]}))
        return
    for step in steps:
        name, args = step[0], [a for a in step[1:] if a != "may-fail"]
        try:
            if name in ("retr", "top", "list", "uidl", "capa"):
                if name == "capa":
                    caps = box.capa()
                    results.append({"ok": True, "response": "+OK", "data": None, "capabilities": sorted(caps.keys())})
                    continue
                response, lines, _octets = getattr(box, name)(*args)
                data = b"".join(line + b"\r\n" for line in lines)
                results.append({"ok": True, "response": response.decode("latin1"), "data": base64.b64encode(data).decode("ascii")})
            elif name == "stat":
                count, size = box.stat()
                results.append({"ok": True, "response": f"{count} {size}", "data": None})
            else:
                response = getattr(box, "pass_" if name == "pass" else name)(*args)
                results.append({"ok": True, "response": response.decode("latin1"), "data": None})
        except Exception as error:  # noqa: BLE001
            results.append({"ok": False, "error": f"{type(error).__name__}: {error}"})
            if "may-fail" not in step:
                break
    print(json.dumps({"results": results}))


main()
