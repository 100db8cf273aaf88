// The quarantine as an administrator uses it: `mailmoat start` strips an executable
// on its way to a real smtp-sink and keeps the original; `mailmoat quarantine list`,
// `show` and `release` (the sink then receives the original byte for byte), `delete`
// and `purge`; and a quarantine that cannot be written tempfails (SMTP 451, POP3 -ERR).
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { validatePolicy } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { demoSamples } from '../../src/demo/samples.js';
import { RawClient } from '../helpers/client.js';
import { SmtpSink, asDumped } from '../helpers/smtp-sink.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { startTestPop3Proxy, startTestProxy } from '../helpers/proxy.js';
import { RawPop3 } from '../helpers/pop3-raw.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
const sample = demoSamples().find((candidate) => candidate.title.startsWith('invoice.pdf.exe'));
if (sample === undefined) throw new Error('no executable sample');

function mailmoat(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

t.test('strip -> list -> show -> release: the upstream receives the original byte for byte; delete, purge', async (t) => {
  const sink = await SmtpSink.start(t);
  const running = await startMailmoat(t, sink.port, '');
  const { port, policy } = running;
  const dir = dirname(policy);

  const client = await RawClient.greeted(port);
  client.send('EHLO q.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n');
  await client.waitForReplies(6);
  client.send(Buffer.concat([sample.wire, Buffer.from('QUIT\r\n')]));
  await client.waitForClose();
  t.same(client.codes(), [220, 250, 250, 250, 250, 354, 250, 221]);
  const [stripped] = await sink.messages(1);
  t.match(stripped?.body, /mailmoat removed the attachment "invoice\.pdf\.exe"/, 'the recipients got the stripped message');
  const summary = (await running.logged('transaction')) as { quarantine?: string };
  t.match(summary.quarantine, /^\d{8}T\d{6}Z-[0-9a-f]{8}$/, 'the transaction line names the quarantine entry');
  const id = summary.quarantine ?? '';
  t.same(await readFile(join(dir, 'quarantine', `${id}.eml`)), sample.content, 'the quarantine holds the original bytes');

  const list = await mailmoat(['quarantine', 'list', '--policy', policy]);
  t.equal(list.code, 0);
  t.match(list.stdout, new RegExp(`^${id}  smtp  rewrite  <alice@example.org>  <bob@example.net>,<carol@example.net>  \\d+ B  executable:invoice\\.pdf\\.exe`));
  const show = await mailmoat(['quarantine', 'show', id, '--policy', policy]);
  t.match(show.stdout, /"action": "rewrite"/);
  t.match(show.stdout, /"kind": "executable-content"/);
  t.match(show.stdout, /Subject: Your invoice/, 'show prints the original header');

  const release = await mailmoat(['quarantine', 'release', id, '--policy', policy]);
  t.equal(release.code, 0, release.stderr);
  t.match(release.stdout, new RegExp(`released ${id} to bob@example.net, carol@example.net via 127\\.0\\.0\\.1:${sink.port}: 250`));
  // smtp-sink names its dumps by the second, so several in one second are not in order: find them by content.
  const released = (await sink.messages(2)).find((message) => !message.body.includes('mailmoat removed'));
  // smtp-sink ends each dump with one more LF and writes every line ending as LF.
  t.equal(released?.body.replace(/\n$/, ''), asDumped(sample.content), 'the released message is the original, byte for byte');
  t.same(released?.rcptArgs.map((args) => args.replace(/^TO:/i, '')), ['<bob@example.net>', '<carol@example.net>'], 'with its original envelope');
  t.match(released?.mailArgs, /<alice@example\.org>/);

  const elsewhere = await mailmoat(['quarantine', 'release', id, '--policy', policy, '--to', 'admin@example.net']);
  t.equal(elsewhere.code, 0, elsewhere.stderr);
  const third = (await sink.messages(3)).find((message) => message.rcptArgs.some((args) => args.includes('admin@example.net')));
  t.same(third?.rcptArgs.map((args) => args.replace(/^TO:/i, '')), ['<admin@example.net>'], '--to replaces the recipients');

  t.equal((await mailmoat(['quarantine', 'purge', '--older-than', '1d', '--policy', policy])).stdout, 'removed 0 entries older than 1d\n');
  t.equal((await mailmoat(['quarantine', 'delete', id, '--policy', policy])).code, 0);
  t.equal((await mailmoat(['quarantine', 'list', '--policy', policy])).stdout, '', 'gone');
  const missing = await mailmoat(['quarantine', 'show', id, '--policy', policy]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no quarantine entry/);
  running.child.kill('SIGTERM');
});

t.test('a quarantine that cannot be written tempfails: SMTP 451 4.3.0, POP3 -ERR [SYS/TEMP]; nothing is delivered', async (t) => {
  const inspector = await createMailInspector(validatePolicy({}, 'test'));
  t.teardown(() => inspector.close());
  const broken = { quarantine: { dir: '/dev/null/quarantine' } };
  const sink = await SmtpSink.start(t);
  const smtp = await startTestProxy(t, sink.port, broken, inspector);
  const client = await RawClient.openTransaction(smtp.port);
  t.teardown(() => client.close());
  client.send(sample.wire);
  const replies = await client.waitForReplies(6);
  t.same(replies[5], { code: 451, lines: ['4.3.0 Quarantine storage error, try again later'] });
  t.equal((await sink.messages(0, 300)).length, 0, 'nothing delivered');
  t.ok(smtp.logs.some((line) => line.msg === 'quarantine write failed: the message is tempfailed'));

  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [sample.content] }]);
  const pop3 = await startTestPop3Proxy(t, dovecot.port, broken, inspector);
  const reader = await RawPop3.connect(pop3.port);
  t.teardown(() => reader.close());
  await reader.login('alice', 'secret');
  t.match(await reader.command('RETR 1'), /^-ERR \[SYS\/TEMP\] mailmoat could not inspect message 1 \(quarantine storage error\); it stays on the server/);
});
