"""A real SMTP client session (Python's standard smtplib) for mailmoat's TLS tests.

Usage: python3 smtp_client.py JSON_OPTIONS < message
Options: {"host": "127.0.0.1", "port": 2525, "mode": "plain" | "starttls" | "implicit",
          "cafile": "/path/ca.pem" (verify against it; required for starttls/implicit),
          "server_hostname": "localhost" (the name to verify and send as SNI; default host),
          "sender": "a@example.org", "recipients": ["b@example.net"],
          "source_address": "127.0.0.5" (the local address to connect from; default any)}
Prints one JSON object: {"ok": bool, "features_before": [...], "features_after": [...],
"response": "...", "error": "...", "peer_issuer": "...", "tls_version": "..."}.
"""
import json
import smtplib
import ssl
import sys


def main():
    options = json.loads(sys.argv[1])
    message = sys.stdin.buffer.read()
    host = options.get("server_hostname", options["host"])
    result = {"ok": False}
    context = None
    if options.get("cafile"):
        context = ssl.create_default_context(cafile=options["cafile"])
    try:
        if options["mode"] == "implicit":
            client = smtplib.SMTP_SSL(host, options["port"], context=context, timeout=30, source_address=None)
        else:
            source = (options["source_address"], 0) if options.get("source_address") else None
            client = smtplib.SMTP(timeout=30, source_address=source)
            client.connect(options["host"], options["port"])
            client._host = host  # the name starttls() verifies and sends as SNI
        client.ehlo("client.example.org")
        result["features_before"] = sorted(client.esmtp_features.keys())
        if options["mode"] == "starttls":
            client.starttls(context=context)
            client.ehlo("client.example.org")
            result["features_after"] = sorted(client.esmtp_features.keys())
        sock = client.sock
        if isinstance(sock, ssl.SSLSocket):
            result["tls_version"] = sock.version()
            issuer = dict(x[0] for x in sock.getpeercert()["issuer"])
            result["peer_issuer"] = issuer.get("commonName", "")
        refused = client.sendmail(options.get("sender", "a@example.org"), options.get("recipients", ["b@example.net"]), message)
        result["refused"] = {k: [v[0], v[1].decode("latin1")] for k, v in refused.items()}
        code, text = client.quit()
        result["response"] = f"{code} {text.decode('latin1')}"
        result["ok"] = True
    except Exception as error:  # noqa: BLE001 - every failure is reported to the test
        result["error"] = f"{type(error).__name__}: {error}"
    print(json.dumps(result))


main()
