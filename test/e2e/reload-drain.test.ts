// `mailmoat start` as a service manager drives it: SIGHUP reloads the policy (a broken
// policy is refused and the running one kept), SIGTERM drains (no new sessions, a
// transfer in progress completes, or gets 421 at the deadline: never a lost message).
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { demoSamples } from '../../src/demo/samples.js';
import { RawClient } from '../helpers/client.js';
import { SmtpSink, freePort } from '../helpers/smtp-sink.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
const executable = demoSamples().find((sample) => sample.title.startsWith('invoice.pdf.exe'));
if (executable === undefined) throw new Error('no executable sample');

interface Running {
  child: ChildProcess;
  port: number;
  policy: string;
  /** Resolves when a log line with this msg has appeared (after `from` lines). */
  logged(message: string, from?: number): Promise<Record<string, unknown>>;
  lines(): number;
  /** The exit code, once the process has exited (registered at spawn: it may exit early). */
  exited: Promise<number | null>;
}

async function startMailmoat(t: Test, sinkPort: number, extra: string): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-ops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const policy = join(dir, 'policy.yaml');
  const write = (more: string) => writeFile(policy, `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:${sinkPort}\nquarantine:\n  dir: ./quarantine\n${more}`);
  await write(extra);
  const child = spawn(process.execPath, [CLI, 'start', '--policy', policy], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  t.teardown(() => child.kill('SIGKILL'));
  const log: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') log.push(JSON.parse(line) as Record<string, unknown>);
  });
  const logged = async (message: string, from = 0): Promise<Record<string, unknown>> => {
    for (const deadline = Date.now() + 15000; Date.now() < deadline; await sleep(25)) {
      const found = log.slice(from).find((line) => line.msg === message);
      if (found !== undefined) return found;
    }
    throw new Error(`no "${message}" in the log: ${JSON.stringify(log.slice(from))}`);
  };
  await logged('listening');
  return { child, port, policy, logged, lines: () => log.length, exited };
}

async function sendExecutable(port: number): Promise<number[]> {
  const client = await RawClient.greeted(port);
  client.send('EHLO ops.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  client.send(Buffer.concat([executable?.wire ?? Buffer.alloc(0), Buffer.from('QUIT\r\n')]));
  await client.waitForClose();
  return client.codes();
}

t.test('SIGHUP: a good policy applies to new sessions, a broken one is refused and the running one kept', async (t) => {
  const sink = await SmtpSink.start(t);
  const mailmoat = await startMailmoat(t, sink.port, 'inspect:\n  smtp: none\n');
  t.same(await sendExecutable(mailmoat.port), [220, 250, 250, 250, 354, 250, 221]);
  t.notMatch((await sink.messages(1))[0]?.body, /mailmoat removed/, 'inspect.smtp: none: delivered as it was');

  const mark = mailmoat.lines();
  await writeFile(mailmoat.policy, (await readFile(mailmoat.policy, 'utf8')).replace('smtp: none', 'smtp: all'));
  mailmoat.child.kill('SIGHUP');
  await mailmoat.logged('policy reloaded: new sessions use it', mark);
  await sendExecutable(mailmoat.port);
  t.equal((await sink.messages(2)).filter((message) => message.body.includes('mailmoat removed')).length, 1, 'after the reload it is stripped');

  const broken = mailmoat.lines();
  await writeFile(mailmoat.policy, (await readFile(mailmoat.policy, 'utf8')).replace('smtp: all', 'smpt: all'));
  mailmoat.child.kill('SIGHUP');
  const failure = await mailmoat.logged('policy reload failed: the running policy is kept', broken);
  t.match(failure.reason, /unknown key "inspect\.smpt" \(did you mean "smtp"\?\)/, 'the log says why');
  await sendExecutable(mailmoat.port);
  t.equal((await sink.messages(3)).filter((message) => message.body.includes('mailmoat removed')).length, 2, 'the running policy still applies');
  mailmoat.child.kill('SIGTERM');
  t.equal(await mailmoat.exited, 0, 'a clean exit');
});

t.test('SIGTERM during DATA: no new sessions; the transfer completes, then 421; exit 0', async (t) => {
  const sink = await SmtpSink.start(t);
  const mailmoat = await startMailmoat(t, sink.port, 'timeouts:\n  drain_seconds: 20\n');
  const client = await RawClient.greeted(mailmoat.port);
  client.send('EHLO ops.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  const wire = executable?.wire ?? Buffer.alloc(0);
  client.send(wire.subarray(0, 300));
  mailmoat.child.kill('SIGTERM');
  await mailmoat.logged('draining: no new sessions, running ones may finish');
  const refused = await new Promise<string>((resolve) => {
    const probe = connect({ host: '127.0.0.1', port: mailmoat.port });
    probe.once('connect', () => (probe.destroy(), resolve('connected')));
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
  t.equal(refused, 'ECONNREFUSED', 'no new sessions while draining');
  await sleep(300);
  client.send(wire.subarray(300));
  await client.waitForClose();
  t.same(client.codes(), [220, 250, 250, 250, 354, 250, 421], 'the message is accepted, then the session is closed with 421');
  t.match(client.replies.at(-1)?.lines[0], /^4\.3\.2 Service shutting down/);
  t.equal((await sink.messages(1)).length, 1, 'and delivered');
  t.equal(await mailmoat.exited, 0, 'a clean exit');
});

t.test('SIGTERM with a sender that never finishes: 421 at timeouts.drain_seconds, nothing delivered', async (t) => {
  const sink = await SmtpSink.start(t);
  const mailmoat = await startMailmoat(t, sink.port, 'timeouts:\n  drain_seconds: 1\n');
  const client = await RawClient.greeted(mailmoat.port);
  client.send('EHLO ops.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: never ends\r\n\r\nhalf');
  await client.waitForReplies(5);
  const idle = await RawClient.greeted(mailmoat.port);
  mailmoat.child.kill('SIGTERM');
  t.ok(await idle.waitForClose(5000), 'an idle session is closed at once');
  t.match(idle.replies.at(-1), { code: 421 });
  t.ok(await client.waitForClose(5000), 'the unfinished one at the deadline');
  t.same(client.codes(), [220, 250, 250, 250, 354, 421], 'the sender gets 421 and will retry');
  t.equal((await sink.messages(0, 500)).length, 0, 'nothing half-delivered');
  t.equal(await mailmoat.exited, 0, 'a clean exit');
});
