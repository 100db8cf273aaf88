// DATA transparency and end-of-data detection (RFC 5321 4.5.2, 4.1.1.4), including
// every SMTP smuggling variant, at every chunk split.
import t from 'tap';
import fc from 'fast-check';
import { DataDecoder, DotStuffer, END_OF_DATA } from '../../src/wire/dot-codec.js';

function decodeChunks(chunks: Buffer[]): { content: Buffer; ended: boolean; rest: Buffer; bare: number } {
  const decoder = new DataDecoder();
  const out: Buffer[] = [];
  for (const [index, chunk] of chunks.entries()) {
    const result = decoder.decode(chunk);
    out.push(...result.content);
    if (result.ended) return { content: Buffer.concat(out), ended: true, rest: Buffer.concat([result.rest, ...chunks.slice(index + 1)]), bare: decoder.bareLineEndings };
  }
  return { content: Buffer.concat(out), ended: false, rest: Buffer.alloc(0), bare: decoder.bareLineEndings };
}

function stuff(content: Buffer, chunkSize = content.length || 1): Buffer {
  const stuffer = new DotStuffer();
  const out: Buffer[] = [];
  for (let i = 0; i < content.length; i += chunkSize) out.push(...stuffer.stuff(content.subarray(i, i + chunkSize)));
  out.push(...stuffer.end());
  return Buffer.concat(out);
}

const b = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Cuts `wire` at the given seeds (taken modulo its length), in order. */
function splitAt(wire: Buffer, cutSeeds: number[]): Buffer[] {
  const cuts = [...new Set(cutSeeds.map((seed) => seed % (wire.length + 1)))].sort((x, y) => x - y);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    chunks.push(wire.subarray(from, cut));
    from = cut;
  }
  chunks.push(wire.subarray(from));
  return chunks;
}

t.test('canonical message: unstuffed, ends at CRLF.CRLF, rest preserved', async (t) => {
  const result = decodeChunks([b('Subject: x\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n')]);
  t.equal(result.ended, true);
  t.equal(result.content.toString('latin1'), 'Subject: x\r\n\r\n.leading dot\r\nbody\r\n');
  t.equal(result.rest.toString('latin1'), 'QUIT\r\n');
  t.equal(result.bare, 0);
});

t.test('empty message: a dot as the first line ends the data', async (t) => {
  const result = decodeChunks([b('.\r\n')]);
  t.equal(result.ended, true);
  t.equal(result.content.length, 0);
});

const SMUGGLING_VARIANTS = ['\n.\n', '\r.\r', '\n.\r\n', '\r\n.\n', '\r.\r\n', '\r\n.\r', '\r\n\0.\r\n', '\n.\r', '\r\n.\r\r\n', '\r\n \r\n.', '\r\n.\x00\r\n'];

for (const variant of SMUGGLING_VARIANTS) {
  t.test(`smuggling variant ${JSON.stringify(variant)} does not end the data`, async (t) => {
    const wire = b(`Subject: x\r\n\r\nhello${variant}MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nspoofed\r\n.\r\n`);
    for (let cut = 0; cut <= wire.length; cut++) {
      const result = decodeChunks([wire.subarray(0, cut), wire.subarray(cut)]);
      t.equal(result.ended, true, `ends at the real end (cut ${cut})`);
      t.equal(result.rest.length, 0, `nothing left over (cut ${cut})`);
      t.match(result.content.toString('latin1'), /MAIL FROM:<evil@example.org>/, 'the smuggled text is content');
      const forwarded = stuff(result.content);
      t.notOk(/(^|[^\r])\n|\r(?!\n)/.test(forwarded.toString('latin1')), 'only canonical CRLF goes upstream');
      t.equal(Buffer.concat([forwarded, END_OF_DATA]).indexOf(b('\r\n.\r\n')), forwarded.length - 2, 'the upstream sees exactly one end');
    }
  });
}

t.test('bare line endings are counted and normalised', async (t) => {
  const result = decodeChunks([b('a\nb\rc\r\n.\r\n')]);
  t.equal(result.content.toString('latin1'), 'a\r\nb\r\nc\r\n');
  t.equal(result.bare, 2);
});

t.test('NUL before a dot is stuffed so a NUL-dropping upstream cannot see an end', async (t) => {
  t.equal(stuff(b('a\r\n\0.\r\nb\r\n')).toString('latin1'), 'a\r\n.\0.\r\nb\r\n');
  t.equal(stuff(b('\0\0'), 1).toString('latin1'), '\0\0', 'held NULs are flushed at the end');
  const roundTrip = decodeChunks([stuff(b('a\r\n\0.\r\n')), END_OF_DATA]);
  t.equal(roundTrip.content.toString('latin1'), 'a\r\n\0.\r\n');
});

// Property: for canonical content, stuff -> decode at any two-way split restores the content, and
// decode -> stuff restores the wire bytes.
const line = fc.stringMatching(/^[.\0a-z ]{0,12}$/);
const canonical = fc.array(line, { maxLength: 12 }).map((lines) => b(lines.map((l) => `${l}\r\n`).join('')));

t.test('property: stuffing round-trips at every split point', async (t) => {
  fc.assert(
    fc.property(canonical, fc.nat(), fc.integer({ min: 1, max: 7 }), (content, cutSeed, chunkSize) => {
      const wire = Buffer.concat([stuff(content, chunkSize), END_OF_DATA]);
      const cut = cutSeed % (wire.length + 1);
      const result = decodeChunks([wire.subarray(0, cut), wire.subarray(cut)]);
      return result.ended && result.rest.length === 0 && result.content.equals(content);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 random messages round-tripped');
});

t.test('property: any bytes, any chunking, same decode', async (t) => {
  const bytes = fc.array(fc.constantFrom('a', '.', '\r', '\n', '\0', ' '), { maxLength: 60 }).map((chars) => b(chars.join('') + '\r\n.\r\n'));
  fc.assert(
    fc.property(bytes, fc.array(fc.nat(), { maxLength: 6 }), (wire, cutSeeds) => {
      const chunks = splitAt(wire, cutSeeds);
      const whole = decodeChunks([wire]);
      const split = decodeChunks(chunks);
      const forwarded = stuff(split.content).toString('latin1');
      return (
        whole.ended === split.ended &&
        whole.content.equals(split.content) &&
        whole.rest.equals(split.rest) &&
        !/(^|[^\r])\n|\r(?!\n)/.test(forwarded)
      );
    }),
    { numRuns: 3000 },
  );
  t.pass('3000 random byte strings decoded identically under random chunking');
});

/**
 * An independent, deliberately naive model of the same rules, over the whole input at once:
 * split into lines at CRLF, bare LF or bare CR; end at a "." line ended by CRLF whose previous
 * line also ended by CRLF; remove one leading dot per line; emit every line with CRLF.
 */
function referenceDecode(wire: Buffer): { content: Buffer; ended: boolean; rest: Buffer; bare: number } {
  const out: number[] = [];
  let bare = 0;
  let previousCrlf = true;
  let position = 0;
  while (position < wire.length) {
    let end = position;
    while (end < wire.length && wire[end] !== 0x0d && wire[end] !== 0x0a) end++;
    if (end === wire.length) break;
    const terminator = wire[end] === 0x0a ? 'lf' : end + 1 < wire.length && wire[end + 1] === 0x0a ? 'crlf' : end + 1 < wire.length ? 'cr' : 'incomplete';
    if (terminator === 'incomplete') break;
    const line = [...wire.subarray(position, end)];
    const next = end + (terminator === 'crlf' ? 2 : 1);
    if (terminator === 'crlf' && previousCrlf && line.length === 1 && line[0] === 0x2e) {
      return { content: Buffer.from(out), ended: true, rest: wire.subarray(next), bare };
    }
    if (line[0] === 0x2e) line.shift();
    out.push(...line, 0x0d, 0x0a);
    if (terminator !== 'crlf') bare++;
    previousCrlf = terminator === 'crlf';
    position = next;
  }
  return { content: Buffer.from(out), ended: false, rest: Buffer.alloc(0), bare };
}

t.test('property: the decoder agrees with a naive reference model under any chunking', async (t) => {
  const bytes = fc.array(fc.constantFrom('a', 'b', '.', '\r', '\n', '\0'), { minLength: 0, maxLength: 80 }).map((chars) => b(chars.join('')));
  fc.assert(
    fc.property(bytes, fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), (body, terminate, cutSeeds) => {
      const wire = terminate ? Buffer.concat([body, b('\r\n.\r\nREST')]) : body;
      const chunks = splitAt(wire, cutSeeds);
      const expected = referenceDecode(wire);
      const actual = decodeChunks(chunks);
      // Without an end, the decoder has also passed on the start of the unfinished last line.
      if (!expected.ended) return !actual.ended && actual.content.subarray(0, expected.content.length).equals(expected.content) && actual.bare === expected.bare;
      return actual.ended && actual.content.equals(expected.content) && actual.rest.equals(expected.rest) && actual.bare === expected.bare;
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 random inputs: same content, end, rest and bare-ending count as the reference model');
});
