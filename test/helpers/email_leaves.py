"""The leaf parts Python's email package finds (the reading most mail clients share).

Reads messages from stdin, each as a decimal byte count, a newline, then the bytes; writes one
JSON line per message: a list of [filename or null, SHA-256 of get_payload(decode=True)] for
every non-multipart part with a non-empty payload (compat32, as message_from_bytes reads).
Leaves under message/partial (a fragment, stripped whole by mailmoat) are marked "fragment";
a multipart part Python could not split (no delimiter it accepts) is one leaf to it, marked
"unsplit multipart", so the test can say why it does not compare them.
"""
import email
import hashlib
import json
import sys


def leaves(part, under_fragment, out):
    ctype = part.get_content_type()
    fragment = under_fragment or ctype == 'message/partial'
    if part.is_multipart():
        for child in part.get_payload():
            if isinstance(child, email.message.Message):
                leaves(child, fragment, out)
        return
    payload = part.get_payload(decode=True)
    if not payload:
        return
    try:
        name = part.get_filename()
    except Exception:
        name = None
    why = 'fragment' if fragment else 'unsplit multipart' if part.get_content_maintype() == 'multipart' else ''
    out.append([name, hashlib.sha256(payload).hexdigest(), why])


def main():
    stdin = sys.stdin.buffer
    while True:
        header = stdin.readline()
        if not header:
            return
        data = stdin.read(int(header))
        out = []
        try:
            leaves(email.message_from_bytes(data), False, out)
            sys.stdout.write(json.dumps(out) + '\n')
        except Exception as error:  # a message Python cannot read: nothing to compare
            sys.stdout.write(json.dumps({'error': str(error)}) + '\n')
        sys.stdout.flush()


main()
