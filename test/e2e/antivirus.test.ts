// Antivirus through the inspector and the SMTP proxy, with a real clamd started by the test:
// EICAR as an attachment, in a zip, quoted-printable, inline in the body and in an attached
// message is found and stripped; `infected: reject` refuses; a scanner that is down tempfails
// (451, nothing upstream) unless the policy says pass.
import t from 'tap';
import { inspectMessage } from '../helpers/inspect.js';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { storedZip } from '../../src/demo/stored-zip.js';
import { EICAR, startClamd } from '../helpers/clamd.js';
import { RawClient } from '../helpers/client.js';
import { SmtpSink } from '../helpers/smtp-sink.js';
import { startTestProxy } from '../helpers/proxy.js';

const multipart = (part: string[]): string =>
  ['From: a@example.org', 'Subject: test', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'see attached', '--b', ...part, '--b--', ''].join('\r\n');

const CASES: Record<string, string> = {
  attachment: multipart(['Content-Type: application/octet-stream; name="test.bin"', 'Content-Transfer-Encoding: base64', '', Buffer.from(EICAR).toString('base64'), '']),
  zip: multipart(['Content-Type: application/zip; name="test.zip"', 'Content-Transfer-Encoding: base64', '', storedZip([{ name: 'readme.txt', data: Buffer.from(EICAR) }]).toString('base64'), '']),
  'quoted-printable': multipart(['Content-Type: text/plain', 'Content-Transfer-Encoding: quoted-printable', '', EICAR.replace(/=/g, '=3D'), '']),
  'inline body': ['From: a@example.org', 'Subject: test', 'Content-Type: text/plain', '', `Hello, ${EICAR}`, ''].join('\r\n'),
  'attached message': multipart(['Content-Type: message/rfc822', '', ['From: x@example.org', 'Subject: inner', 'Content-Type: text/plain', '', EICAR, ''].join('\r\n')]),
};

const examine = (policyText: string, message: string) => inspectMessage(message, policyText);

t.test('EICAR is found wherever it is, and stripped', async (t) => {
  const clamd = await startClamd(t);
  const policy = `antivirus:\n  clamd: unix:${clamd.socket}\n`;
  for (const [label, message] of Object.entries(CASES)) {
    const { report, output } = await examine(policy, message);
    t.equal(report.verdict.action, 'rewrite', label);
    t.ok(report.findings.some((finding) => finding.kind === 'virus' && /Mailmoat\.Test\.EICAR/.test(finding.reason)), `${label}: the signature is named`);
    t.notOk(output.includes(EICAR) || output.includes(Buffer.from(EICAR).toString('base64')), `${label}: the virus is gone`);
    t.match(output, /infected(?:=?\r\n|\s)+with(?:=?\r\n|\s)+Mailmoat\.Test\.EICAR/, `${label}: the notice says why`);
  }
  const clean = await examine(policy, multipart(['Content-Type: text/plain', '', 'nothing to see', '']));
  t.equal(clean.report.verdict.action, 'pass', 'a clean message passes');
  const rejected = await examine(`${policy}  infected: reject\n`, CASES.attachment ?? '');
  t.match(rejected.report.verdict, { action: 'reject', reason: /infected/ });
});

t.test('a scanner that is down: tempfail by default, pass only if the policy says so', async (t) => {
  const policy = 'antivirus:\n  clamd: unix:/nonexistent/clamd.sock\n  scan_timeout_seconds: 2\n';
  const down = await examine(policy, multipart(['Content-Type: text/plain', '', 'hello', '']));
  t.match(down.report.verdict, { action: 'tempfail', reason: /virus scanner failed/ });
  const passed = await examine(`${policy}  failure: pass\n`, multipart(['Content-Type: text/plain', '', 'hello', '']));
  t.equal(passed.report.verdict.action, 'rewrite');
  t.match(passed.output, /^X-Mailmoat-Finding: .*scanner-failure/m, 'delivered with a header that says it was not scanned');
});

t.test('through the SMTP proxy: the virus is stripped upstream; scanner down answers 451 and nothing is delivered', async (t) => {
  const clamd = await startClamd(t);
  const sink = await SmtpSink.start(t);
  const policy = parsePolicyText(`antivirus:\n  clamd: unix:${clamd.socket}\n`, 'test');
  const proxy = await startTestProxy(t, sink.port, {}, await createMailInspector(policy));
  const client = await RawClient.openTransaction(proxy.port);
  client.send(`${CASES.attachment}.\r\n`);
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 250);
  client.close();
  const [received] = await sink.messages(1);
  t.notOk(received?.body.includes(Buffer.from(EICAR).toString('base64')), 'the virus did not reach the upstream');
  t.match(received?.body, /infected(?:=?\n|\s)+with(?:=?\n|\s)+Mailmoat\.Test\.EICAR/);

  await clamd.stop();
  const down = await RawClient.openTransaction(proxy.port);
  down.send(`${CASES.attachment}.\r\n`);
  await down.waitForReplies(6);
  t.equal(down.replies[5]?.code, 451, 'scanner down: 451, the sender retries');
  down.close();
  t.equal((await sink.messages(1, 500)).length, 1, 'nothing more reached the upstream');
});

t.test('a message larger than clamd accepts in one stream is judged by its parts', async (t) => {
  const clamd = await startClamd(t);
  const big = multipart(['Content-Type: application/octet-stream; name="a.bin"', 'Content-Transfer-Encoding: base64', '', Buffer.alloc(6 * 1024 * 1024, 0x61).toString('base64').replace(/.{76}/g, '$&\r\n'), '--b', 'Content-Type: application/octet-stream; name="b.bin"', 'Content-Transfer-Encoding: base64', '', Buffer.alloc(6 * 1024 * 1024, 0x62).toString('base64').replace(/.{76}/g, '$&\r\n'), '']);
  // max_scan_bytes as the test clamd's StreamMaxLength (10M): the message is not sent whole, its parts are.
  const { report } = await examine(`antivirus:\n  clamd: unix:${clamd.socket}\n  max_scan_bytes: 10485760\n`, big);
  t.equal(report.verdict.action, 'pass', 'two clean 6 MB parts pass although the whole message is over the 10 MB stream limit');
});

t.test('clamd killed mid-run: tempfail, never pass; scanning recovers by itself when clamd returns', async (t) => {
  const clamd = await startClamd(t);
  const policy = `antivirus:\n  clamd: unix:${clamd.socket}\n  scan_timeout_seconds: 5\n`;
  const inspector = await createMailInspector(parsePolicyText(policy, 'test'));
  const bytes = Buffer.from(CASES.attachment ?? '', 'latin1');
  const source = { size: bytes.length, open: async function* () { yield bytes; } };
  const before = await inspector.examine(source);
  t.equal(before.verdict.action, 'rewrite', 'found while clamd runs');
  if (before.verdict.action === 'rewrite') await before.verdict.message.dispose();
  clamd.child.kill('SIGKILL');
  await clamd.stop();
  const during = await inspector.examine(source);
  t.equal(during.verdict.action, 'tempfail', 'clamd gone: tempfail');
  const again = await startClamd(t, [], clamd.socket);
  t.equal(again.socket, clamd.socket);
  const after = await inspector.examine(source);
  t.equal(after.verdict.action, 'rewrite', 'the same inspector finds it again once clamd is back');
  if (after.verdict.action === 'rewrite') await after.verdict.message.dispose();
});

t.test('a list of clamd addresses fails over to the next one that answers', async (t) => {
  const clamd = await startClamd(t);
  const policy = `antivirus:\n  clamd: ["unix:/nonexistent/first.sock", "unix:${clamd.socket}"]\n`;
  const { report } = await examine(policy, CASES.attachment ?? '');
  t.equal(report.verdict.action, 'rewrite', 'the second clamd found the virus');
  const none = await examine('antivirus:\n  clamd: ["unix:/nonexistent/a.sock", "unix:/nonexistent/b.sock"]\n', CASES.attachment ?? '');
  t.equal(none.report.verdict.action, 'tempfail', 'none answers: tempfail');
  t.throws(() => parsePolicyText('antivirus:\n  clamd: ["managed"]\n', 'test'), /antivirus\.clamd/, 'a list holds addresses only');
});

t.test('antivirus.scan narrows what goes to clamd: parts, or the raw message only', async (t) => {
  const clamd = await startClamd(t);
  const policy = (scan: string): string => `antivirus:\n  clamd: unix:${clamd.socket}\n  max_scan_bytes: 10485760\n  scan: ${scan}\n`;
  const parts = await examine(policy('parts'), CASES.attachment ?? '');
  t.equal(parts.report.verdict.action, 'rewrite', 'parts: the infected part is stripped');
  t.notOk(parts.report.findings.some((finding) => finding.part === 'whole message'), 'parts: the message as a whole is not scanned');

  const whole = await examine(policy('message'), CASES.attachment ?? '');
  t.match(whole.report.verdict, { action: 'reject', reason: /infected/ }, 'message: a virus cannot be cut out of the message, so it is refused');
  t.same(whole.report.findings.map((finding) => finding.part), ['whole message'], 'message: only the message as a whole was scanned');
  const clean = await examine(policy('message'), multipart(['Content-Type: text/plain', '', 'nothing to see', '']));
  t.equal(clean.report.verdict.action, 'pass', 'message: a clean message passes');

  // Over clamd's 10 MB stream limit: with the message as the only reading, that is never a pass.
  const big = multipart(['Content-Type: application/octet-stream; name="a.bin"', 'Content-Transfer-Encoding: base64', '', Buffer.alloc(8 * 1024 * 1024, 0x61).toString('base64').replace(/.{76}/g, '$&\r\n'), '']);
  const tooBig = await examine(policy('message'), big);
  t.not(tooBig.report.verdict.action, 'pass', 'message: a message clamd cannot read whole is not passed');
  t.ok(tooBig.report.findings.some((finding) => finding.kind === 'unscannable' && finding.part === 'whole message'), 'message: it is unscannable (limits)');
  const tooBigParts = await examine(policy('parts-and-message'), big);
  t.equal(tooBigParts.report.verdict.action, 'pass', 'parts-and-message: the same message passes on its clean part');
});
