// The inspector end to end: through the SMTP proxy into a real smtp-sink (the executable is gone,
// the rest of the message intact), and offline with `mailmoat scan` (its JSON, --out-dir, exit codes).
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { RawClient } from '../helpers/client.js';
import { SmtpSink, asDumped } from '../helpers/smtp-sink.js';
import { startTestProxy } from '../helpers/proxy.js';
import { corpusFile } from '../helpers/corpora.js';
import { windowsProgramStub } from '../../src/demo/samples.js';

const run = promisify(execFile);
const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

const peStub = windowsProgramStub;

const message = (attachmentName: string, attachment: Buffer): string =>
  [
    'From: a@example.org',
    'To: b@example.net',
    'Subject: quarterly figures',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    '--outer',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Figures attached; run setup.exe if the viewer is missing.',
    '--outer',
    `Content-Type: application/octet-stream; name="${attachmentName}"`,
    `Content-Disposition: attachment; filename="${attachmentName}"`,
    'Content-Transfer-Encoding: base64',
    '',
    attachment.toString('base64'),
    '--outer',
    'Content-Type: application/pdf; name="figures.pdf"',
    'Content-Disposition: attachment; filename="figures.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from('%PDF-1.4\n%%EOF\n').toString('base64'),
    '--outer--',
    '',
  ].join('\r\n');

t.test('through the proxy: the executable is replaced by a notice upstream, the rest arrives as sent', async (t) => {
  const sink = await SmtpSink.start(t);
  const policy = parsePolicyText('', 'test');
  const proxy = await startTestProxy(t, sink.port, {}, await createMailInspector(policy));
  const sent = message('statement.pdf.exe', peStub());
  const client = await RawClient.openTransaction(proxy.port);
  client.send(`${sent}.\r\n`);
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 250);
  client.close();
  const [received] = await sink.messages(1);
  const body = received?.body ?? '';
  t.notOk(body.includes(peStub().toString('base64')), 'the executable is gone');
  t.match(body, /mailmoat removed the attachment "statement\.pdf\.exe"/, 'the notice names it');
  t.match(body, /^X-Mailmoat-Action: stripped 1 part$/m);
  t.ok(body.includes(asDumped(sent.slice(sent.indexOf('--outer\r\nContent-Type: text/plain'), sent.indexOf('--outer\r\nContent-Type: application/octet-stream')))), 'the text part is intact');
  t.ok(body.includes(asDumped(sent.slice(sent.indexOf('--outer\r\nContent-Type: application/pdf')))), 'the PDF part and the closing boundary are intact');
  t.match(proxy.transactions[0], { verdict: 'rewrite', reason: 'stripped 1 part' });
});

t.test('through the proxy: a clean message with a PDF passes byte for byte', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port, {}, await createMailInspector(parsePolicyText('', 'test')));
  const sent = message('report.pdf', Buffer.from('%PDF-1.4 clean'));
  const client = await RawClient.openTransaction(proxy.port);
  client.send(`${sent}.\r\n`);
  await client.waitForReplies(6);
  client.close();
  const [received] = await sink.messages(1);
  t.equal(received?.body.replace(/\n+$/, ''), asDumped(sent).replace(/\n+$/, ''));
  t.equal(proxy.transactions[0]?.verdict, 'pass');
});

t.test('mailmoat scan: JSON lines, --out-dir with the forwarded bytes, exit codes', async (t) => {
  t.ok(existsSync(CLI), 'built');
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-scan-'));
  const bad = join(dir, 'bad.eml');
  await writeFile(bad, message('invoice.exe', peStub()));
  const clean = corpusFile('mailsplit/test/fixtures/mimetorture.eml');
  const out = join(dir, 'out');
  const { stdout } = await run(process.execPath, [CLI, 'scan', '--json', '--out-dir', out, bad, clean]);
  const results = stdout.trim().split('\n').map((line) => JSON.parse(line) as { file: string; action: string; findings: { part: string; filename: string; kind: string; reason: string }[] });
  t.equal(results.length, 2);
  t.match(results[0], { file: bad, action: 'rewrite', findings: [{ part: '2', filename: 'invoice.exe', kind: 'executable' }] });
  t.ok(results[0]?.findings.some((finding) => finding.kind === 'executable-content'), 'the content was sniffed too');
  t.same(results[1], { file: clean, action: 'pass', findings: [] });
  t.ok((await readFile(join(out, 'mimetorture.eml'))).equals(await readFile(clean)), 'pass: the output is the input');
  t.match((await readFile(join(out, 'bad.eml'), 'latin1')), /mailmoat removed the attachment "invoice\.exe"/);
  const human = await run(process.execPath, [CLI, 'scan', bad]);
  t.match(human.stdout, /bad\.eml: rewrite \(part 2 "invoice\.exe" executable: the name matches \*\.exe/);
  const missing = await run(process.execPath, [CLI, 'scan', join(dir, 'nope.eml')]).catch((error: { code: number; stderr: string }) => error);
  t.equal((missing as { code: number }).code, 1, 'an unreadable file: exit 1');
  const usage = await run(process.execPath, [CLI, 'scan']).catch((error: { code: number }) => error);
  t.equal((usage as { code: number }).code, 2, 'no file: exit 2');
});
