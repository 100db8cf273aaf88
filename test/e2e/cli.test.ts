// The command line as an administrator uses it: check, start (with a real smtp-sink behind it),
// demo, help, and the exit codes (0 ok, 1 invalid policy, 2 usage).
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '../helpers/client.js';
import { SmtpSink } from '../helpers/smtp-sink.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { QuarantineStore } from '../../src/quarantine/store.js';
import { bytesSource } from '../helpers/inspect.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function mailmoat(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

t.before(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
});

t.test('check prints the effective policy; a typo is exit 1 with a suggestion', async (t) => {
  const ok = await mailmoat(['check', '--policy', 'policies/default.yaml']);
  t.equal(ok.code, 0);
  t.match(ok.stdout, /valid/);
  t.match(ok.stdout, /final_reply_seconds: 600/);
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-cli-'));
  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, 'timeouts:\n  comand_seconds: 5\n');
  const failed = await mailmoat(['check', '--policy', bad]);
  t.equal(failed.code, 1);
  t.match(failed.stderr, /unknown key "timeouts\.comand_seconds" \(did you mean "command_seconds"\?\)/);
  const missing = await mailmoat(['check', '--policy', join(dir, 'nope.yaml')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot read the file/);
});

t.test('a reader that goes away (| head -1) ends the output: exit 0, no EPIPE stack trace', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-cli-epipe-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const policy = join(dir, 'policy.yaml');
  await writeFile(policy, 'quarantine:\n  dir: ./quarantine\n');
  const store = new QuarantineStore(join(dir, 'quarantine'));
  await store.store(bytesSource(Buffer.from('Subject: kept\r\n\r\nbody\r\n')), { session: 's-1', protocol: 'smtp', direction: 'inbound', sender: '<a@example.org>', recipients: ['<b@example.net>'], action: 'rewrite', reason: 'stripped 1 part', findings: [] });
  for (const args of [['quarantine', 'list', '--policy', policy], ['check', '--policy', 'policies/default.yaml']]) {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The read end closes before the command writes a byte: its first write fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, 'close');
    t.equal(code, 0, `${args.slice(0, 2).join(' ')}: exit 0`);
    t.equal(stderr, '', `${args.slice(0, 2).join(' ')}: nothing on stderr`);
  }
});

t.test('check with upstream: original-destination says whether the SO_ORIGINAL_DST addon loads', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const gateway = join(dir, 'gateway.yaml');
  await writeFile(gateway, 'listeners:\n  - protocol: smtp\n    listen: 0.0.0.0:2525\n    upstream: original-destination\n');
  const checked = await mailmoat(['check', '--policy', gateway]);
  t.equal(checked.code, 0, checked.stderr);
  t.match(checked.stdout, /# original-destination: the SO_ORIGINAL_DST addon loads/);
  t.match(checked.stdout, /upstream: original-destination/);
});

t.test('usage errors exit 2; --help exits 0 on every command', async (t) => {
  t.equal((await mailmoat(['frobnicate'])).code, 2);
  t.equal((await mailmoat(['check', '--no-such-flag'])).code, 2);
  for (const command of [[], ['start'], ['check'], ['demo']]) {
    const help = await mailmoat([...command, '--help']);
    t.equal(help.code, 0, `${command.join(' ') || 'mailmoat'} --help`);
    t.match(help.stdout, /Usage: mailmoat/);
  }
});

t.test('demo runs the samples through the proxy and exits 0', async (t) => {
  const demo = await mailmoat(['demo']);
  t.equal(demo.code, 0, demo.stderr);
  t.match(demo.stdout, /plain text note .* pass .* 250 .* as expected/);
  t.match(demo.stdout, /SMTP smuggling attempt .* 1 message, .* as expected/);
  t.match(demo.stdout, /eicar\.com\.txt \(the anti-virus test file\) .* rewrite .* replaced by a notice, as expected/, 'with clamd installed, the EICAR sample is caught by a managed clamd');

  // The POP3 part: the same samples retrieved from the demo maildrop through the proxy.
  const pop3 = demo.stdout.slice(demo.stdout.indexOf('\nPOP3:'));
  t.match(pop3, /^#\s+sample\s+in the mailbox\s+verdict\s+what the client received$/m, 'the POP3 table follows the SMTP one');
  const table = pop3.split('\n\n')[1] ?? '';
  const rows = table.split('\n').filter((line) => /^\d+ /.test(line));
  t.equal(rows.length, 8, 'one POP3 row per sample, the EICAR sample included');
  for (const row of rows) t.match(row, / as expected$/, row);
  t.match(pop3, /plain text note .* pass .* 297 bytes, identical, as expected/);
  t.match(pop3, /invoice\.pdf\.exe \(a Windows program\) .* rewrite .* attachment replaced by a notice, as expected/);
  t.match(pop3, /SMTP smuggling attempt .* pass .* identical, as expected/, 'the stored (normalised) smuggling sample comes back byte for byte');
  t.match(pop3, /eicar\.com\.txt \(the anti-virus test file\) .* rewrite .* replaced by a notice, as expected/, 'the EICAR sample is caught on retrieval too');
});

t.test('start relays to a real smtp-sink, logs one JSON line per transaction, stops on SIGTERM', async (t) => {
  const sink = await SmtpSink.start(t);
  const running = await startMailmoat(t, sink.port, '');
  const port = running.port;
  const client = await RawClient.connect(port);
  await client.waitForReplies(1);
  client.send('EHLO cli.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  client.send('Subject: via start\r\n\r\nhello\r\n.\r\nQUIT\r\n');
  await client.waitForClose();
  t.same(client.codes(), [220, 250, 250, 250, 354, 250, 221]);
  t.equal((await sink.messages(1)).length, 1);
  t.match(await running.logged('transaction'), { helo: 'cli.test', sender: '<a@example.org>', recipients: 1, verdict: 'pass', direction: 'inbound' });
  running.child.kill('SIGTERM');
  t.equal(await running.exited, 0, 'SIGTERM: a clean exit');
});
