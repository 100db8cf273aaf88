// The patched mailsplit takes the body lines that cannot be delimiter lines in one native search
// instead of a processLine() call each (patches/): it must split every message exactly as the line
// by line path does, for the same writes. The reference is the same splitter with that search
// turned off (extendsBodyGroup() is the one place that allows it).
import t from 'tap';
import fc from 'fast-check';
import { Splitter } from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';

class LineByLineSplitter extends Splitter {
  extendsBodyGroup(): boolean {
    return false;
  }
}

/** What the splitter emitted, with the body and data runs of one node joined (chunking moves their cuts). */
async function split(input: Buffer, sizes: number[], lineByLine = false): Promise<string[]> {
  const splitter = lineByLine ? new LineByLineSplitter() : new Splitter();
  const events: string[] = [];
  const nodes = new Map<MimeNode, number>();
  let run: { key: string; bytes: Buffer[] } | undefined;
  const flush = (): void => {
    if (run !== undefined) events.push(`${run.key} ${JSON.stringify(Buffer.concat(run.bytes).toString('latin1'))}`);
    run = undefined;
  };
  const reading = (async () => {
    for await (const chunk of splitter as AsyncIterable<SplitterChunk>) {
      if (chunk.type === 'node') {
        flush();
        const node = chunk as MimeNode;
        nodes.set(node, nodes.size);
        events.push(`node ${nodes.size - 1} ${node.contentType || ''} ${JSON.stringify(node.getHeaders().toString('latin1'))}`);
        continue;
      }
      const key = `${chunk.type} of node ${nodes.get(chunk.node) ?? '?'}`;
      if (run?.key !== key) {
        flush();
        run = { key, bytes: [] };
      }
      run.bytes.push(chunk.value);
    }
    flush();
  })();
  let offset = 0;
  for (let index = 0; offset < input.length; index++) {
    const size = sizes.length === 0 ? input.length : Math.max(1, sizes[index % sizes.length] ?? 1);
    splitter.write(input.subarray(offset, offset + size));
    offset += size;
  }
  splitter.end();
  await reading;
  return events;
}

/** Body lines, many of them close to a delimiter line of "outer" or "inner" or to a line ending edge case. */
const LINES = [
  'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=',
  'plain text',
  '',
  '-',
  '--',
  '---',
  '--outer',
  '--outer--',
  '--outer  ',
  '--outer-- \t',
  '--outerx',
  '--inner',
  '--inner--',
  '\r--outer',
  '\r--inner--',
  '\rtext',
  '\r-',
  '\r',
  '-x',
  ' --outer',
  '-- signature',
  'Content-Type: text/plain',
];
const ENDINGS = ['\r\n', '\n'];

const body = fc.array(fc.tuple(fc.constantFrom(...LINES), fc.constantFrom(...ENDINGS)), { maxLength: 14 }).map((lines) => lines.map(([line, end]) => line + end).join(''));

const message = fc.tuple(body, body, body, body, fc.constantFrom(...ENDINGS)).map(([preamble, first, nested, last, end]) =>
  Buffer.from(
    [
      'From: a@example.org',
      'Content-Type: multipart/mixed; boundary="outer"',
      '',
      `${preamble}--outer`,
      'Content-Type: application/octet-stream; name="a.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      `${first}--outer`,
      'Content-Type: multipart/alternative; boundary="inner"',
      '',
      '--inner',
      '',
      `${nested}--inner--`,
      `--outer`,
      'Content-Type: text/plain',
      '',
      `${last}--outer--`,
      '',
    ].join(end),
    'latin1',
  ),
);

t.test('whole, cut and byte by byte writes split every message as line by line', async (t) => {
  let compared = 0;
  await fc.assert(
    fc.asyncProperty(message, fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 6 }), async (input, sizes) => {
      for (const cut of [[], sizes, [1]]) t.same(await split(input, cut), await split(input, cut, true), `writes of ${cut.join(',') || 'the whole'}`);
      compared++;
    }),
    { numRuns: 150 },
  );
  t.equal(compared, 150);
});

t.test('a long base64 body is split into the same parts and bytes, delimiter lines included', async (t) => {
  const line = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n';
  const input = Buffer.from(
    `Content-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\nContent-Transfer-Encoding: base64\r\n\r\n${line.repeat(900)}--outer\r\n\r\n${'text\r\n\r\n'.repeat(300)}--outer--\r\n`,
    'latin1',
  );
  for (const cut of [[], [65536], [4097, 13]]) {
    const events = await split(input, cut);
    t.same(events, await split(input, cut, true), `writes of ${cut.join(',') || 'the whole'}`);
    t.match(events, [/^node 0 multipart/, /^data/, /^node 1/, /^body of node 1 "QUJD/, /^data/, /^node 2/, /^body of node 2 "text/, /^data/]);
  }
});
