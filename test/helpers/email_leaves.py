"""The leaf parts Python's email package finds (the reading most mail clients share).

Reads messages from stdin, each as a decimal byte count, a newline, then the bytes; writes one
JSON line per message: for every non-multipart part with a non-empty payload (compat32, as
message_from_bytes reads), [filename or null, SHA-256 of get_payload(decode=True), SHA-256 of
the same normalised as said below, why it is not compared or ""]. The reasons, each a reading that cannot hide a file:
  "fragment"           under message/partial, which mailmoat strips whole (unscannable: partial);
  "unsplit multipart"  a multipart part Python found no delimiter in: one opaque text to it,
                       while mailmoat splits and inspects its parts;
  "encoded message"    under a message/* part with a base64 or quoted-printable transfer
                       encoding: Python parses the encoded text, mailmoat decodes it and walks
                       the message inside;
  "undecodable base64" base64 whose length is one more than a multiple of 4: Python gives up
                       and keeps the encoded text (bpo-27397), mailmoat decodes all but the
                       last character, as clients do;
  "padded encoding"    a Content-Transfer-Encoding value with spaces around it ("base64 "):
                       Python does not recognise it and keeps the encoded text, mailmoat
                       decodes it, as clients do.
Text is also compared without trailing whitespace at line ends and at its end (a decoder
deletes it, RFC 2045 6.7; where one line break before a delimiter goes is not content),
other leaves without line breaks at their very end (where a message is cut short inside one).
"""
import email
import email.errors
import email.policy
import hashlib
import json
import re
import sys

TRAILING = re.compile(rb'[ \t]+(?=\r?\n|$)')
ENCODINGS = ('base64', 'quoted-printable', 'x-uuencode', 'uuencode', 'uue', 'x-uue')


def text_key(payload):
    return hashlib.sha256(TRAILING.sub(b'', payload).replace(b'\r\n', b'\n').rstrip(b'\n')).hexdigest()


def leaves(part, why, out):
    ctype = part.get_content_type()
    if not why and ctype == 'message/partial':
        why = 'fragment'
    if part.is_multipart():
        cte = str(part.get('content-transfer-encoding', '')).strip().lower()
        inner = why or ('encoded message' if part.get_content_maintype() == 'message' and cte in ('base64', 'quoted-printable') else '')
        for child in part.get_payload():
            if isinstance(child, email.message.Message):
                leaves(child, inner, out)
        return
    payload = part.get_payload(decode=True)
    if not payload:
        return
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not why and part.get_content_maintype() == 'multipart':
        why = 'unsplit multipart'
    if not why and any(isinstance(defect, email.errors.InvalidBase64LengthDefect) for defect in part.defects):
        why = 'undecodable base64'
    cte = str(part.get('content-transfer-encoding', '')).lower()
    if not why and cte not in ENCODINGS and cte.strip() in ENCODINGS:
        why = 'padded encoding'
    key = text_key(payload) if part.get_content_maintype() == 'text' else hashlib.sha256(payload.rstrip(b'\r\n')).hexdigest()
    out.append([name, hashlib.sha256(payload).hexdigest(), key, why])


def main():
    stdin = sys.stdin.buffer
    while True:
        header = stdin.readline()
        if not header:
            return
        data = stdin.read(int(header))
        out = []
        try:
            leaves(email.message_from_bytes(data, policy=email.policy.default), '', out)
            sys.stdout.write(json.dumps(out) + '\n')
        except Exception as error:  # a message Python cannot read: nothing to compare
            sys.stdout.write(json.dumps({'error': str(error)}) + '\n')
        sys.stdout.flush()


main()
