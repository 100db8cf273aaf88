"""Debian's dkimpy (python3-dkim) as an independent DKIM/ARC implementation for the tests.

Reads a JSON request on stdin, answers JSON on stdout. Every DNS lookup goes to the
loopback server the test started (dnspython, UDP, its port), never to the system's.
  {"op": "sign", "message": b64, "selector", "domain", "key": pem, "length"?: bool (l= tag)} -> {"message": b64}
  {"op": "arc_sign", "message": b64, "selector", "domain", "key", "srv_id"} -> {"message": b64}
  {"op": "verify", "message": b64}      -> {"dkim": bool}
  {"op": "arc_verify", "message": b64, "ed25519"?: bool}  -> {"cv": str or null, "results": [...], "comment": str}
With "ed25519", dkimpy's list of ARC algorithms (only rsa-sha256 in dkimpy 1.1) is extended by
ed25519-sha256 before arc_verify: the signature checks are then dkimpy's own DKIM code for
ed25519-sha256 (RFC 8463, with PyNaCl), which arc_verify shares with rsa-sha256.
"""
import base64
import json
import sys

import dkim
import dns.message
import dns.query
import dns.rdatatype

request = json.load(sys.stdin)
port = int(request.get("dns_port", 53))


def txt(name, timeout=5):
    query = dns.message.make_query(name.decode() if isinstance(name, bytes) else name, dns.rdatatype.TXT)
    answer = dns.query.udp(query, "127.0.0.1", port=port, timeout=timeout)
    for rrset in answer.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            return b"".join(list(rrset.items)[0].strings)
    return None


message = base64.b64decode(request["message"])
op = request["op"]
if op == "sign":
    header = dkim.sign(message, request["selector"].encode(), request["domain"].encode(), request["key"].encode(),
                       canonicalize=(b"relaxed", b"relaxed"), length=bool(request.get("length")), include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"])
    out = {"message": base64.b64encode(header + message).decode()}
elif op == "arc_sign":
    headers = dkim.arc_sign(message, request["selector"].encode(), request["domain"].encode(), request["key"].encode(), request["srv_id"].encode())
    out = {"message": base64.b64encode(b"".join(headers) + message).decode()}
elif op == "verify":
    out = {"dkim": bool(dkim.verify(message, dnsfunc=txt))}
elif op == "arc_verify":
    if request.get("ed25519"):
        import hashlib
        import dkim.crypto
        dkim.crypto.ARC_HASH_ALGORITHMS[b"ed25519-sha256"] = hashlib.sha256
    cv, results, comment = dkim.arc_verify(message, dnsfunc=txt)
    out = {
        # None: the newest seal says cv=fail ("the chain is terminated").
        "cv": cv.decode() if cv is not None else None,
        "results": [{key.decode() if isinstance(key, bytes) else key: (value.decode() if isinstance(value, bytes) else value) for key, value in row.items()} for row in results],
        "comment": comment,
    }
else:
    raise SystemExit(f"unknown op {op}")
json.dump(out, sys.stdout)
