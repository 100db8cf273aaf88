// uuencoded files inside text parts: MimeKit's photo.uu decodes to a real JPEG head; a uuencoded
// Windows program or executable name in a plain text message is found; named uuencoded gifs
// (mime4j's uu-*.msg) are not flagged.
import t from 'tap';
import fc from 'fast-check';
import { inspectMessage } from '../helpers/inspect.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_UU_BLOCKS_PER_PART, UuScanner, type UuBlock } from '../../src/inspect/uuencode.js';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { windowsProgramStub } from '../../src/demo/samples.js';
import { CORPORA } from '../helpers/corpora.js';

const photo = readFileSync(join(CORPORA, 'MimeKit/UnitTests/TestData/encoders/photo.uu'));

/** Classic uuencoding (45 bytes a line), for building test messages. */
function uuencode(name: string, data: Buffer): string {
  const char = (value: number): string => String.fromCharCode(value === 0 ? 96 : value + 32);
  const lines = [`begin 644 ${name}`];
  for (let offset = 0; offset < data.length; offset += 45) {
    const chunk = data.subarray(offset, offset + 45);
    let line = char(chunk.length);
    for (let i = 0; i < chunk.length; i += 3) {
      const [a = 0, b = 0, c = 0] = [chunk[i], chunk[i + 1], chunk[i + 2]];
      line += char(a >> 2) + char(((a << 4) | (b >> 4)) & 63) + char(((b << 2) | (c >> 6)) & 63) + char(c & 63);
    }
    lines.push(line);
  }
  return [...lines, '`', 'end'].join('\r\n');
}

t.test('the scanner decodes a real uuencoded file at any chunking', async (t) => {
  for (const size of [7, 100, 4096, photo.length]) {
    const scanner = new UuScanner();
    for (let offset = 0; offset < photo.length; offset += size) scanner.write(photo.subarray(offset, offset + size));
    const [block] = scanner.end();
    t.equal(block?.name, 'photo.jpg', `chunks of ${size}`);
    t.same([...(block?.head.subarray(0, 3) ?? [])], [0xff, 0xd8, 0xff], 'a JPEG head');
    t.equal(block?.head.length, 4096, 'only the first 4 KB are kept');
  }
});

const examine = async (text: string) => (await inspectMessage(`From: a@example.org\r\nSubject: files\r\nContent-Type: text/plain\r\n\r\n${text}\r\n`)).report;

t.test('a uuencoded program in a text part is found by name and by content', async (t) => {
  const report = await examine(`Here is the tool:\r\n\r\n${uuencode('tool.exe', windowsProgramStub())}\r\n\r\nregards`);
  t.equal(report.verdict.action, 'rewrite');
  t.same(report.findings.map((finding) => finding.kind).sort(), ['executable', 'executable-content']);
  const disguised = await examine(`${uuencode('holiday.jpg', windowsProgramStub())}`);
  t.match(disguised.findings, [{ kind: 'executable-content', filename: 'holiday.jpg' }], 'a program named .jpg is found by content');
});

t.test('harmless uuencoded files pass', async (t) => {
  t.equal((await examine(photo.toString('latin1'))).verdict.action, 'pass', 'MimeKit photo.jpg');
  const mime4j = join(CORPORA, 'mime4j/core/src/test/resources/mimetools-testmsgs');
  for (const name of ['uu-junk.msg', 'uu-zeegee.msg', 'sig-uu.msg']) {
    const message = readFileSync(join(mime4j, name));
    const inspector = await createMailInspector(parsePolicyText('', 'test'));
    const report = await inspector.examine({ size: message.length, open: async function* () { yield message; } });
    t.equal(report.verdict.action, 'pass', name);
  }
  t.equal((await examine('begin 644 is how the old files started; setup.exe is mentioned here.')).verdict.action, 'pass', 'text that mentions setup.exe');
  t.equal((await examine('begin 644 setup.exe\r\nis what the old tools printed, then the data followed.')).verdict.action, 'pass', 'a begin line followed by prose is not a block');
});

/** The scanner as first written, one regular expression per line: what the scanner must still find. */
class LineByLineScanner {
  readonly blocks: UuBlock[] = [];
  private partial = '';
  private open: { name: string; bytes: number[]; lines: number } | undefined;

  write(text: Buffer): void {
    const lines = (this.partial + text.toString('latin1')).split('\n');
    this.partial = (lines.pop() ?? '').slice(0, 1024);
    for (const line of lines) this.line(line.replace(/\r$/, ''));
  }

  end(): UuBlock[] {
    if (this.partial !== '') this.line(this.partial);
    this.close();
    return this.blocks;
  }

  private line(line: string): void {
    if (line.length > 1024) return;
    if (this.open === undefined) {
      const begin = /^begin(?:-base64)?\s+[0-7]{3,4}\s+(.+?)\s*$/.exec(line);
      if (begin !== null && this.blocks.length < MAX_UU_BLOCKS_PER_PART) this.open = { name: begin[1] ?? '', bytes: [], lines: 0 };
      return;
    }
    if (line === 'end' || line === '`' || line === '') return this.close();
    const expected = 1 + Math.ceil((((line.charCodeAt(0) - 32) & 0x3f) * 4) / 3);
    if (!/^[\x20-\x60]+$/.test(line) || line.length < expected || line.length > expected + 4) {
      if (this.open.lines === 0) this.open = undefined;
      return;
    }
    this.open.lines++;
    if (this.open.bytes.length < 4096) {
      const value = (index: number): number => ((line.charCodeAt(index) || 32) - 32) & 0x3f;
      const bytes: number[] = [];
      for (let i = 1; bytes.length < value(0); i += 4) {
        const [a, b, c, d] = [value(i), value(i + 1), value(i + 2), value(i + 3)];
        bytes.push(((a << 2) | (b >> 4)) & 0xff, ((b << 4) | (c >> 2)) & 0xff, ((c << 6) | d) & 0xff);
      }
      this.open.bytes.push(...bytes.slice(0, value(0)));
    }
  }

  private close(): void {
    if (this.open === undefined) return;
    if (this.open.lines > 0) this.blocks.push({ name: this.open.name, head: Buffer.from(this.open.bytes.slice(0, 4096)) });
    this.open = undefined;
  }
}

t.test('property: the scanner finds what a line-by-line reading finds, at any chunking', async (t) => {
  const program = uuencode('tool.exe', windowsProgramStub()).split('\r\n');
  const large = uuencode('big.bin', Buffer.alloc(9000, 7)).split('\r\n');
  const line = fc.oneof(
    fc.constantFrom('begin 644 a.exe', 'begin-base64 644 b.txt', 'begin 0644 c d.scr  ', 'begin', 'beginning of a text', ' begin 644 x.exe', 'end', '`', '', 'M', 'x'.repeat(1100), `begin 644 ${'n'.repeat(1030)}`, ...program.slice(1, 4), ...large.slice(1, 3)),
    fc.constantFrom(program, large).map((lines) => lines.join('\n')),
    fc.string({ maxLength: 20 }),
  );
  const text = fc.tuple(fc.array(line, { maxLength: 40 }), fc.array(fc.constantFrom('\r\n', '\n', '\r\r\n'), { minLength: 1, maxLength: 3 })).map(([lines, breaks]) => lines.map((entry, index) => entry + (breaks[index % breaks.length] as string)).join(''));
  fc.assert(
    fc.property(text, fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 6 }), fc.boolean(), (content, sizes, cut) => {
      const bytes = Buffer.from(cut ? content.slice(0, -1) : content, 'latin1');
      const scanner = new UuScanner();
      const reference = new LineByLineScanner();
      for (let offset = 0, index = 0; offset < bytes.length; index++) {
        const piece = bytes.subarray(offset, offset + (sizes[index % sizes.length] as number));
        scanner.write(piece);
        reference.write(piece);
        offset += piece.length;
      }
      const [found, expected] = [scanner.end(), reference.end()];
      return JSON.stringify(found.map((block) => [block.name, block.head.toString('hex')])) === JSON.stringify(expected.map((block) => [block.name, block.head.toString('hex')]));
    }),
    { numRuns: 3000 },
  );
  t.pass('3000 texts read alike');
});
