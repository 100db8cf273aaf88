// Logs and metrics pass the tools that consume them, on a real run with two workers and
// traffic: every stdout line is one JSON object with unique keys (a strict parser that
// rejects duplicates: test/helpers/strict_json.py), and a /metrics scrape passes
// `promtool check metrics` (Debian's prometheus package) with process metrics for the
// supervisor and each worker.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { demoSamples } from '../../src/demo/samples.js';
import { RawClient } from '../helpers/client.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { SmtpSink, freePort } from '../helpers/smtp-sink.js';
import { createLogger } from '../../src/observe/log.js';
import { Writable } from 'node:stream';

const STRICT_JSON = join(process.cwd(), 'test', 'helpers', 'strict_json.py');

/** Runs a command with `input` on stdin: its exit code and output. */
async function pipeTo(command: string, args: string[], input: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdin.end(input);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, output };
}

async function send(port: number, wire: Buffer): Promise<number[]> {
  const client = await RawClient.greeted(port);
  client.send('EHLO tools.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  client.send(Buffer.concat([wire, Buffer.from('QUIT\r\n')]));
  await client.waitForClose();
  return client.codes();
}

t.test('the strict parser can fail: a duplicate key is reported', async (t) => {
  const result = await pipeTo('python3', [STRICT_JSON], '{"a":1}\n{"session":"x","session":"x"}\n');
  t.equal(result.code, 1);
  t.match(result.output, /line 2: duplicate keys \['session'\]/);
});

t.test('a child logger and a summary with the same key: one key per line', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(chunk.toString()), done()) });
  const logger = createLogger('info', sink).child({ session: 's1' });
  logger.info({ session: 's1', verdict: 'pass' }, 'transaction');
  logger.info({ session: 's2' }, 'other');
  const result = await pipeTo('python3', [STRICT_JSON], lines.join(''));
  t.equal(result.code, 0, result.output);
  t.match(JSON.parse(lines[0] ?? '{}'), { session: 's1', verdict: 'pass', msg: 'transaction' });
  t.match(JSON.parse(lines[1] ?? '{}'), { session: 's1', logged_session: 's2' }, 'a different value is kept under another key');
});

t.test('workers: 2 under traffic: strict JSON logs, promtool-clean metrics covering every process', async (t) => {
  const sink = await SmtpSink.start(t);
  const adminPort = await freePort();
  const mailmoat = await startMailmoat(t, sink.port, `workers: 2\nadmin:\n  listen: 127.0.0.1:${adminPort}\n`);
  await mailmoat.logged('admin listener: /metrics, /healthz, status page on /');
  const samples = demoSamples().slice(0, 4);
  const codes = await Promise.all(samples.map((sample) => send(mailmoat.port, sample.wire)));
  for (const reply of codes) t.equal(reply.at(-2), 250, 'accepted');
  await sink.messages(samples.length);

  const scrape = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const promtool = await pipeTo('promtool', ['check', 'metrics'], scrape);
  t.equal(promtool.code, 0, `promtool check metrics: ${promtool.output}`);
  t.equal(promtool.output, '', 'no lint findings');
  t.notMatch(scrape, /mailmoat_process_process_/, 'no doubled prefix');
  for (const process of ['supervisor', 'worker-1', 'worker-2']) {
    t.match(scrape, new RegExp(`^mailmoat_process_resident_memory_bytes\\{process="${process}"\\} \\d+`, 'm'), `memory of ${process}`);
    t.match(scrape, new RegExp(`^mailmoat_nodejs_eventloop_lag_seconds\\{process="${process}"\\} `, 'm'), `event loop lag of ${process}`);
  }
  t.match(scrape, new RegExp(`^mailmoat_messages_total\\{[^}]*\\} ${samples.length > 0 ? '\\d' : ''}`, 'm'), 'the mail counters are there too');

  mailmoat.child.kill('SIGTERM');
  t.equal(await mailmoat.exited, 0);
  const lines = mailmoat.rawLines();
  t.ok(lines.filter((line) => line.includes('"msg":"transaction"')).length >= samples.length, 'transaction lines logged');
  const strict = await pipeTo('python3', [STRICT_JSON], `${lines.join('\n')}\n`);
  t.equal(strict.code, 0, `every line is JSON with unique keys: ${strict.output}`);
});
