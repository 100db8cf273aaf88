// Parser differentials (PEERS.md; amavis CVE-2024-28054; "Inbox Invasion", CCS 2024): a part that
// declares two transfer encodings is sniffed in every reading, whichever order they come in; a part
// with two names is classified by each.
import t from 'tap';
import { inspectMessage } from '../helpers/inspect.js';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { windowsProgramStub } from '../../src/demo/samples.js';

const findings = async (message: string) => (await inspectMessage(message)).report;

const message = (partHeaders: string[], body: string): string =>
  ['From: a@example.org', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'hi', '--b', ...partHeaders, '', body, '--b--', ''].join('\r\n');

t.test('two transfer encodings: every reading is sniffed', async (t) => {
  const program = windowsProgramStub().toString('base64');
  for (const order of [['7bit', 'base64'], ['base64', '7bit'], ['quoted-printable', 'base64']]) {
    const report = await findings(message(['Content-Type: application/pdf; name="doc.pdf"', ...order.map((encoding) => `Content-Transfer-Encoding: ${encoding}`)], program));
    t.equal(report.verdict.action, 'rewrite', order.join(' then '));
    t.match(report.findings, [{ kind: 'executable-content' }]);
  }
  const harmless = await findings(message(['Content-Type: text/plain', 'Content-Transfer-Encoding: 7bit', 'Content-Transfer-Encoding: quoted-printable'], 'plain words'));
  t.same(harmless.findings.map((finding) => finding.kind), ['ambiguous-headers'], 'harmless text: nothing but the ambiguity...');
  t.match(harmless.verdict, { action: 'rewrite', summary: 'normalized 1 part with ambiguous headers' }, '...which is written back one way');
});

t.test('two names, two headers: each is classified', async (t) => {
  const report = await findings(message(['Content-Type: application/pdf; name="invoice.pdf"', 'Content-Type: application/octet-stream; name="invoice.exe"', 'Content-Disposition: attachment; filename="invoice.pdf"'], 'JVBERi0xLjQK'));
  t.match(report.findings, [{ kind: 'executable', filename: 'invoice.exe' }]);
});

t.test('two boundaries: written back as the one that was inspected, so every reader agrees', async (t) => {
  const program = windowsProgramStub().toString('base64');
  // mailsplit reads the last boundary; the first one hides a program from it.
  const twoWays = [
    'From: a@example.org',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="one"; boundary="two"',
    '',
    '--one',
    'Content-Type: application/octet-stream; name="hidden.exe"',
    'Content-Transfer-Encoding: base64',
    '',
    program,
    '--two',
    'Content-Type: text/plain',
    '',
    'what the inspector reads',
    '--two--',
    '--one--',
    '',
  ].join('\r\n');
  const bytes = Buffer.from(twoWays);
  const inspector = await createMailInspector(parsePolicyText('', 'test'));
  const report = await inspector.examine({ size: bytes.length, open: async function* () { yield bytes; } });
  t.match(report.findings, [{ part: 'root', kind: 'ambiguous-headers', reason: /2 different boundaries/ }]);
  t.equal(report.verdict.action, 'rewrite');
  if (report.verdict.action !== 'rewrite') return;
  const chunks: Buffer[] = [];
  for await (const chunk of report.verdict.message.open()) chunks.push(chunk);
  await report.verdict.message.dispose();
  const output = Buffer.concat(chunks).toString('latin1');
  const typeLines = output.match(/^Content-Type: multipart[^\r\n]*(?:\r\n[ \t][^\r\n]*)*/gm) ?? [];
  t.equal(typeLines.length, 1, 'one Content-Type');
  t.equal((typeLines[0]?.match(/boundary=/g) ?? []).length, 1, 'one boundary');
  t.match(typeLines[0], /boundary="two"/, 'the one that was inspected');
  const again = await inspector.examine({ size: output.length, open: async function* () { yield Buffer.from(output, 'latin1'); } });
  t.notOk(again.findings.some((finding) => finding.kind === 'ambiguous-headers'), 'the output reads one way only');
});
