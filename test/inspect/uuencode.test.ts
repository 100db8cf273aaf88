// uuencoded files inside text parts: MimeKit's photo.uu decodes to a real JPEG head; a uuencoded
// Windows program or executable name in a plain text message is found; named uuencoded gifs
// (mime4j's uu-*.msg) are not flagged.
import t from 'tap';
import { inspectMessage } from '../helpers/inspect.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UuScanner } from '../../src/inspect/uuencode.js';
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
