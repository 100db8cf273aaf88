// Postfix in front of mailmoat, both recipes of the README, with a real Postfix (bench/postfix.ts,
// the master.cf lines of filterMasterCf) and a real smtp-sink behind its reinjection smtpd:
// `content_filter` (after the queue: Postfix's scan transport hands each queued message to
// mailmoat, which forwards it to the reinjection smtpd) and `smtpd_proxy_filter` (before the
// queue: Postfix relays each session's commands to mailmoat as they come). Executables are
// stripped in both; every connection comes from 127.0.0.1, and `limits.exempt` keeps the
// per-address rate limit from refusing Postfix (without it, it does: the control case).
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestPki } from '../../bench/test-pki.js';
import { demoSamples } from '../../src/demo/samples.js';
import { RawClient } from '../helpers/client.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { startTestPostfix } from '../helpers/postfix.js';
import { SmtpSink, freePort } from '../helpers/smtp-sink.js';
import type { Test } from 'tap';

const plain = demoSamples()[0];
const executable = demoSamples().find((sample) => sample.title.startsWith('invoice.pdf.exe'));
if (plain === undefined || executable === undefined) throw new Error('no samples');

/** One SMTP session to Postfix, a command at a time (a refused MAIL ends it): the codes seen. */
async function submit(port: number, wire: Buffer): Promise<number[]> {
  const client = await RawClient.greeted(port);
  const codes = [client.replies[0]?.code ?? 0];
  for (const line of ['EHLO client.example', 'MAIL FROM:<alice@example.org>', 'RCPT TO:<bob@example.net>', 'DATA']) {
    const reply = await client.command(line);
    codes.push(reply.code);
    if (reply.code >= 400) {
      await client.command('QUIT');
      client.close();
      return codes;
    }
  }
  const before = client.replies.length;
  client.send(wire);
  codes.push((await client.waitForReplies(before + 1))[before]?.code ?? 0);
  await client.command('QUIT');
  client.close();
  return codes;
}

async function setup(t: Test, mode: 'content_filter' | 'smtpd_proxy_filter', limits: string) {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-postfix-filter-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pki = await createTestPki(dir);
  const sink = await SmtpSink.start(t);
  const reinjectPort = await freePort();
  // mailmoat forwards to Postfix's reinjection smtpd (started below; mailmoat connects per session).
  const mailmoat = await startMailmoat(t, reinjectPort, `workers: 1\nlimits:\n${limits}`);
  const postfix = await startTestPostfix(t, { certFile: pki.certFile, keyFile: pki.keyFile, relayPort: sink.port, filter: { mode, port: mailmoat.port, reinjectPort } });
  return { sink, mailmoat, postfix };
}

const verdicts = (log: Record<string, unknown>[]): string[] => log.filter((line) => line.msg === 'transaction').map((line) => String(line.verdict));

t.test('content_filter (after queue): every message passes mailmoat, the executable is stripped', async (t) => {
  const { sink, mailmoat, postfix } = await setup(t, 'content_filter', '  exempt: [127.0.0.1/32]\n');
  t.same(await submit(postfix.port, plain.wire), [220, 250, 250, 250, 354, 250], 'Postfix queues the plain message');
  t.same(await submit(postfix.port, executable.wire), [220, 250, 250, 250, 354, 250], 'and the executable one');
  const delivered = await sink.messages(2, 60_000);
  const stripped = delivered.find((message) => message.body.includes('invoice.pdf.exe'));
  t.match(stripped?.body, /removed|stripped|notice/i, 'the executable arrives replaced by the notice');
  t.notMatch(stripped?.body, /TVqQAAMAAAAEAAAA/, 'its bytes do not arrive');
  t.ok(delivered.every((message) => /^Received: from .*127\.0\.0\.1/m.test(message.body)), 'through the reinjection smtpd');
  for (const message of delivered) t.match(message.rcptArgs.join(' '), /bob@example\.net/);
  t.same(verdicts(mailmoat.log()).sort(), ['pass', 'rewrite'], 'mailmoat saw both (pass, rewrite)');
});

t.test('smtpd_proxy_filter (before queue): sessions through mailmoat; limits.exempt keeps Postfix from being rate-limited', async (t) => {
  const { sink, mailmoat, postfix } = await setup(t, 'smtpd_proxy_filter', '  max_connections_per_address_per_minute: 3\n  exempt: [127.0.0.1/32]\n');
  const codes: number[][] = [];
  for (let n = 0; n < 6; n++) codes.push(await submit(postfix.port, plain.wire));
  codes.push(await submit(postfix.port, executable.wire));
  t.same(codes, Array(7).fill([220, 250, 250, 250, 354, 250]), 'seven sessions from 127.0.0.1, over the rate of 3 a minute, all accepted');
  const delivered = await sink.messages(7, 60_000);
  t.equal(delivered.filter((message) => message.body.includes('invoice.pdf.exe')).length, 1);
  t.same(verdicts(mailmoat.log()).sort(), ['pass', 'pass', 'pass', 'pass', 'pass', 'pass', 'rewrite']);
  t.notOk(mailmoat.log().some((line) => line.limit !== undefined), 'no limit hit');
});

t.test('control: without limits.exempt, the same sessions hit the per-address rate', async (t) => {
  const { mailmoat, postfix } = await setup(t, 'smtpd_proxy_filter', '  max_connections_per_address_per_minute: 3\n');
  const codes: number[][] = [];
  for (let n = 0; n < 5; n++) codes.push(await submit(postfix.port, plain.wire));
  t.same(codes.slice(0, 3), Array(3).fill([220, 250, 250, 250, 354, 250]), 'the first three pass');
  t.ok(codes.slice(3).every((session) => (session.at(-1) ?? 0) >= 400 && (session.at(-1) ?? 0) < 500), `then a 4xx, nothing lost: ${JSON.stringify(codes.slice(3))}`);
  t.ok(mailmoat.log().some((line) => line.limit === 'max_connections_per_address_per_minute'), 'mailmoat logged the limit');
});
