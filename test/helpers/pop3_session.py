"""A real POP3 client session (Python's standard poplib) for mailmoat's tests.

Usage: python3 pop3_session.py HOST PORT TIMEOUT_SECONDS JSON_STEPS [JSON_OPTIONS]
Steps: ["user", "alice"], ["pass", "secret"], ["stat"], ["list"], ["uidl"],
["retr", 1], ["top", 1, 0], ["dele", 1], ["capa"], ["stls"], ["quit"].
Options: {"ssl": true} connects with implicit TLS (POP3_SSL); {"cafile": path} is the CA
that TLS (implicit or STLS) verifies against; {"server_hostname": name} the name verified
and sent as SNI (default: HOST). A result for stls and a TLS connection names the issuer.
Prints one JSON object: {"results": [...]} where each result is
{"ok": true, "response": ..., "data": base64 of the CRLF-joined lines or null}
or {"ok": false, "error": "..."}; the session stops at the first error unless the
step is marked with a trailing "may-fail".
"""
import base64
import json
import poplib
import ssl
import sys


def issuer_of(sock):
    return dict(x[0] for x in sock.getpeercert()["issuer"]).get("commonName", "")


def main():
    host, port, timeout, steps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
    options = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    context = ssl.create_default_context(cafile=options["cafile"]) if "cafile" in options else None
    tls_name = options.get("server_hostname", host)
    results = []
    try:
        if options.get("ssl"):
            box = poplib.POP3_SSL(tls_name, port, timeout=timeout, context=context)
        else:
            box = poplib.POP3(host, port, timeout=timeout)
            box.host = tls_name  # the name stls() verifies and sends as SNI
        welcome = {"ok": True, "response": box.getwelcome().decode("latin1"), "data": None}
        if options.get("ssl"):
            welcome["issuer"] = issuer_of(box.sock)
        results.append(welcome)
    except Exception as error:  # noqa: BLE001 - every failure is reported to the test
        print(json.dumps({"results": [{"ok": False, "error": f"{type(error).__name__}: {error}"}]}))
        return
    for step in steps:
        name, args = step[0], [a for a in step[1:] if a != "may-fail"]
        try:
            if name == "stls":
                response = box.stls(context=context)
                results.append({"ok": True, "response": response.decode("latin1"), "data": None, "issuer": issuer_of(box.sock)})
                continue
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
