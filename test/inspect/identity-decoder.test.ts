// A part in 7bit, 8bit, binary or no transfer encoding is read through IdentityDecoder instead of a
// PassThrough stream: its decoded content must be exactly its body bytes, in any chunking of the
// message, and an executable sent that way must still be found; an attached message in 7bit keeps
// the pausable stream and is still walked.
import t from 'tap';
import fc from 'fast-check';
import { walkLeafParts, type LeafPart, type MimeLimits } from '../../src/inspect/mime.js';
import type { MessageSource } from '../../src/inspect/api.js';

const LIMITS: MimeLimits = { maxParts: 100, maxDepth: 10, maxHeaderBytes: 64 * 1024, maxArchiveBytes: 1024 * 1024, maxAttachedMessageBytes: 1024 * 1024 };

/** The message in pieces of the given sizes (the last piece takes the rest). */
const chunked = (bytes: Buffer, sizes: number[]): MessageSource => ({
  size: bytes.length,
  async *open() {
    let offset = 0;
    for (const size of sizes) {
      if (offset >= bytes.length) return;
      yield bytes.subarray(offset, offset + size);
      offset += size;
    }
    if (offset < bytes.length) yield bytes.subarray(offset);
  },
});

/** Walks with a whole-part sink: every leaf's whole decoded content. */
async function walkWhole(message: MessageSource): Promise<{ leaves: LeafPart[]; decoded: Buffer[] }> {
  const decoded: Buffer[] = [];
  const leaves = await walkLeafParts(message, LIMITS, 0, [], {
    maxBytes: 1024 * 1024,
    take: async (_part, content) => {
      decoded.push(content === 'too big' ? Buffer.alloc(0) : Buffer.from(content));
    },
  });
  return { leaves, decoded };
}

/** A body of lines (any byte but CR and LF in them), CRLF-terminated. */
const body = fc.array(fc.uint8Array({ maxLength: 200 }).map((line) => Buffer.from(line.filter((byte) => byte !== 0x0d && byte !== 0x0a))), { minLength: 1, maxLength: 60 })
  .map((lines) => Buffer.concat(lines.flatMap((line) => [line, Buffer.from('\r\n')])));

t.test('a single part in an identity encoding decodes to its body bytes, in any chunking', async (t) => {
  await fc.assert(
    fc.asyncProperty(body, fc.constantFrom('', '7bit', '8bit', 'binary', '7BIT'), fc.array(fc.integer({ min: 1, max: 3000 }), { maxLength: 20 }), async (content, encoding, sizes) => {
      const header = `From: a@example.org\r\nContent-Type: application/octet-stream\r\n${encoding === '' ? '' : `Content-Transfer-Encoding: ${encoding}\r\n`}\r\n`;
      const { leaves, decoded } = await walkWhole(chunked(Buffer.concat([Buffer.from(header, 'latin1'), content]), sizes));
      t.equal(leaves.length, 1);
      t.ok(decoded[0]?.equals(content), 'the whole decoded content is the body');
      t.ok(leaves[0]?.head.equals(content.subarray(0, 4096)), 'the head is the body\'s first bytes');
    }),
    { numRuns: 200 },
  );
});

t.test('an executable in binary encoding in a multipart is sniffed from its head', async (t) => {
  const pe = Buffer.alloc(256);
  pe.write('MZ', 0, 'latin1');
  pe.writeUInt32LE(0x80, 0x3c);
  pe.writeUInt32BE(0x50450000, 0x80);
  const message = Buffer.concat([
    Buffer.from('From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n', 'latin1'),
    pe,
    Buffer.from('\r\n--b--\r\n', 'latin1'),
  ]);
  const { leaves } = await walkWhole(chunked(message, [7, 90, 3]));
  t.equal(leaves.length, 2);
  t.equal(leaves[0]?.head.toString('latin1'), 'hello');
  t.ok(leaves[1]?.head.equals(pe), 'the binary part\'s head is the executable');
});

t.test('an attached message in 7bit is still walked while it is decoded', async (t) => {
  const message = Buffer.from(
    'From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n' +
      'From: b@example.org\r\nContent-Type: application/octet-stream; name="tool.exe"\r\n\r\ninner\r\n--b--\r\n',
    'latin1',
  );
  const { leaves } = await walkWhole(chunked(message, [50]));
  t.equal(leaves.length, 1);
  const embedded = leaves[0]?.embedded;
  t.ok(Array.isArray(embedded), 'the attached message was walked');
  if (Array.isArray(embedded)) t.same(embedded[0]?.names, ['tool.exe']);
});
