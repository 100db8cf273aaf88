// The administrator's choices: sanitize (Mailtraq's rename to .TxT), allow-lists for senders and
// recipients (a recipient exemption needs every recipient listed), the subject tag, and markers off.
import t from 'tap';
import { inspectMessage } from '../helpers/inspect.js';
import type { InspectionContext } from '../../src/inspect/api.js';
import { windowsProgramStub } from '../../src/demo/samples.js';

const MESSAGE = Buffer.from(
  [
    'From: a@example.org',
    'Subject: =?utf-8?B?UmVjaG51bmc=?=',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain',
    '',
    'invoice attached',
    '--b',
    'Content-Type: application/octet-stream; name="invoice.exe"',
    'Content-Disposition: attachment; filename="invoice.exe"',
    'Content-Transfer-Encoding: base64',
    '',
    windowsProgramStub().toString('base64'),
    '--b--',
    '',
  ].join('\r\n'),
);

const context = (sender: string, recipients: string[]): InspectionContext => ({ sessionId: 't', direction: 'inbound', sender: `<${sender}>`, recipients: recipients.map((r) => `<${r}>`) });

const run = (policyText: string, ctx?: InspectionContext) => inspectMessage(MESSAGE, policyText, ctx);

t.test('sanitize keeps the file under a harmless name', async (t) => {
  const { report, output } = await run('inspect:\n  executables:\n    action: sanitize\n');
  t.match(report.verdict, { action: 'rewrite', summary: 'renamed 1 part' });
  t.match(output, /^Content-Disposition: attachment; filename=invoice\.exe\.TxT$/m);
  t.match(output, /^Content-Type: application\/octet-stream$/m);
  t.ok(output.includes(windowsProgramStub().toString('base64')), 'the content is kept');
  t.notMatch(output, /filename="invoice\.exe"/);
});

t.test('allow-lists: a listed sender, or every recipient listed', async (t) => {
  const policy = 'inspect:\n  allow:\n    senders: ["*@partner.example"]\n    recipients: ["it-*@example.net"]\n';
  t.equal((await run(policy, context('billing@partner.example', ['x@example.net']))).report.verdict.action, 'pass', 'listed sender');
  t.equal((await run(policy, context('x@other.example', ['it-ops@example.net', 'it-dev@example.net']))).report.verdict.action, 'pass', 'every recipient listed');
  t.equal((await run(policy, context('x@other.example', ['it-ops@example.net', 'ceo@example.net']))).report.verdict.action, 'rewrite', 'one recipient not listed: no exemption');
  t.equal((await run(policy)).report.verdict.action, 'rewrite', 'no envelope (scan): no exemption');
});

t.test('subject tag, and no marker headers when marking is off', async (t) => {
  const { output } = await run('inspect:\n  subject_tag: "[attachment removed]"\n  mark_headers: false\n');
  t.match(output, /^Subject: \[attachment removed\] =\?utf-8\?B\?UmVjaG51bmc=\?=$/m, 'the tag stands before the encoded subject');
  t.notMatch(output, /X-Mailmoat/);
  t.match(output, /mailmoat removed the attachment "invoice\.exe"/);
});
