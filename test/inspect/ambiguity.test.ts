// Parser differentials (PEERS.md; amavis CVE-2024-28054; "Inbox Invasion", CCS 2024): a part that
// declares two transfer encodings is sniffed in every reading, whichever order they come in; a part
// with two names is classified by each.
import t from 'tap';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { windowsProgramStub } from '../../src/demo/samples.js';

async function findings(message: string) {
  const bytes = Buffer.from(message);
  const inspector = await createMailInspector(parsePolicyText('', 'test'));
  const report = await inspector.examine({ size: bytes.length, open: async function* () { yield bytes; } });
  if (report.verdict.action === 'rewrite') await report.verdict.message.dispose();
  return report;
}

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
  t.equal(harmless.verdict.action, 'pass', 'two encodings of harmless text pass');
});

t.test('two names, two headers: each is classified', async (t) => {
  const report = await findings(message(['Content-Type: application/pdf; name="invoice.pdf"', 'Content-Type: application/octet-stream; name="invoice.exe"', 'Content-Disposition: attachment; filename="invoice.pdf"'], 'JVBERi0xLjQK'));
  t.match(report.findings, [{ kind: 'executable', filename: 'invoice.exe' }]);
});
