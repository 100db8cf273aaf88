// Postfix in front of mailmoat, both recipes of the README, with a real Postfix (bench/postfix.ts,
// the master.cf lines of filterMasterCf) and a real smtp-sink behind its reinjection smtpd:
// `content_filter` (after the queue: Postfix's scan transport hands each queued message to
// mailmoat, which forwards it to the reinjection smtpd) and `smtpd_proxy_filter` (before the
// queue: Postfix relays each session's commands to mailmoat as they come). Executables are
// stripped in both; every connection comes from 127.0.0.1, and `limits.exempt` keeps the
// per-address rate limit from refusing Postfix (without it, it does: the control case). With
// `smtp.xforward_from`, Postfix's XFORWARD gives mailmoat the real client (clients here come from
// other loopback addresses): its address decides the direction and the per-address limits, and
// mailmoat relays XFORWARD to the reinjection smtpd, whose Received header names that client.
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
/** The first line of the executable's base64 (an MZ header), as the sample carries it. */
const PE_LINE = /^TVoAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$/m;
if (!PE_LINE.test(executable.wire.toString('latin1'))) throw new Error('the executable sample changed: update PE_LINE');

/** One SMTP session to Postfix, a command at a time (a refused MAIL ends it): the codes seen. */
async function submit(port: number, wire: Buffer, from?: string): Promise<number[]> {
  const client = await RawClient.greeted(port, from);
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

async function setup(t: Test, mode: 'content_filter' | 'smtpd_proxy_filter', limits: string, more = '') {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-postfix-filter-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pki = await createTestPki(dir);
  const sink = await SmtpSink.start(t);
  const reinjectPort = await freePort();
  // mailmoat forwards to Postfix's reinjection smtpd (started below; mailmoat connects per session).
  const mailmoat = await startMailmoat(t, reinjectPort, `workers: 1\nlimits:\n${limits}${more}`);
  const postfix = await startTestPostfix(t, { certFile: pki.certFile, keyFile: pki.keyFile, relayPort: sink.port, filter: { mode, port: mailmoat.port, reinjectPort } });
  return { sink, mailmoat, postfix };
}


t.test('content_filter (after queue): every message passes mailmoat, the executable is stripped', async (t) => {
  const { sink, mailmoat, postfix } = await setup(t, 'content_filter', '  exempt: [127.0.0.1/32]\n');
  t.same(await submit(postfix.port, plain.wire), [220, 250, 250, 250, 354, 250], 'Postfix queues the plain message');
  t.same(await submit(postfix.port, executable.wire), [220, 250, 250, 250, 354, 250], 'and the executable one');
  const delivered = await sink.messages(2, 60_000);
  const stripped = delivered.find((message) => message.body.includes('invoice.pdf.exe'));
  t.match(stripped?.body, /removed|stripped|notice/i, 'the executable arrives replaced by the notice');
  t.notMatch(stripped?.body, PE_LINE, 'its bytes do not arrive');
  t.ok(delivered.every((message) => /^Received: from .*127\.0\.0\.1/m.test(message.body)), 'through the reinjection smtpd');
  for (const message of delivered) t.match(message.rcptArgs.join(' '), /bob@example\.net/);
  // The log lines come over a pipe from the child: awaited, not read at once.
  t.same((await mailmoat.loggedTimes('transaction', 2)).map((line) => String(line.verdict)).sort(), ['pass', 'rewrite'], 'mailmoat saw both (pass, rewrite)');
});

t.test('smtpd_proxy_filter (before queue): sessions through mailmoat; limits.exempt keeps Postfix from being rate-limited', async (t) => {
  const { sink, mailmoat, postfix } = await setup(t, 'smtpd_proxy_filter', '  max_connections_per_address_per_minute: 3\n  exempt: [127.0.0.1/32]\n');
  const codes: number[][] = [];
  for (let n = 0; n < 6; n++) codes.push(await submit(postfix.port, plain.wire));
  codes.push(await submit(postfix.port, executable.wire));
  t.same(codes, Array(7).fill([220, 250, 250, 250, 354, 250]), 'seven sessions from 127.0.0.1, over the rate of 3 a minute, all accepted');
  const delivered = await sink.messages(7, 60_000);
  t.equal(delivered.filter((message) => message.body.includes('invoice.pdf.exe')).length, 1);
  t.same((await mailmoat.loggedTimes('transaction', 7)).map((line) => String(line.verdict)).sort(), ['pass', 'pass', 'pass', 'pass', 'pass', 'pass', 'rewrite']);
  t.notOk(mailmoat.log().some((line) => line.limit !== undefined), 'no limit hit');
});

t.test('control: without limits.exempt, the same sessions hit the per-address rate', async (t) => {
  const { mailmoat, postfix } = await setup(t, 'smtpd_proxy_filter', '  max_connections_per_address_per_minute: 3\n');
  const codes: number[][] = [];
  for (let n = 0; n < 5; n++) codes.push(await submit(postfix.port, plain.wire));
  t.same(codes.slice(0, 3), Array(3).fill([220, 250, 250, 250, 354, 250]), 'the first three pass');
  t.ok(codes.slice(3).every((session) => (session.at(-1) ?? 0) >= 400 && (session.at(-1) ?? 0) < 500), `then a 4xx, nothing lost: ${JSON.stringify(codes.slice(3))}`);
  t.match(await mailmoat.logged('connection refused by a limit'), { limit: 'max_connections_per_address_per_minute' }, 'mailmoat logged the limit');
});

/** Trust Postfix's XFORWARD; 127.0.0.2 is an internal client (outbound: not inspected by default). */
const XFORWARD_POLICY = 'smtp:\n  xforward_from: [127.0.0.1/32]\nnetworks:\n  internal: [127.0.0.2/32]\n';

t.test('content_filter with XFORWARD: the real client decides the direction, and the server behind sees it', async (t) => {
  const { sink, mailmoat, postfix } = await setup(t, 'content_filter', '  exempt: [127.0.0.1/32]\n', XFORWARD_POLICY);
  t.same(await submit(postfix.port, executable.wire, '127.0.0.2'), [220, 250, 250, 250, 354, 250], 'an internal client sends the executable');
  t.same(await submit(postfix.port, executable.wire, '127.0.0.3'), [220, 250, 250, 250, 354, 250], 'an outside client sends it too');
  const delivered = await sink.messages(2, 60_000);
  const fromInside = delivered.find((message) => /^Received: from \S+ \(\S+ \[127\.0\.0\.2\]\)/m.test(message.body));
  const fromOutside = delivered.find((message) => /^Received: from \S+ \(\S+ \[127\.0\.0\.3\]\)/m.test(message.body));
  t.ok(fromInside !== undefined && fromOutside !== undefined, 'the reinjection smtpd names each real client (XFORWARD relayed through mailmoat)');
  t.match(fromInside?.body, PE_LINE, 'outbound mail is not inspected (inspect.smtp: inbound): the executable passes');
  t.notMatch(fromOutside?.body, PE_LINE, 'inbound mail is: the executable is stripped');
  const seen = (await mailmoat.loggedTimes('transaction', 2)).map((line) => [line.direction, line.verdict, (line.xforward as Record<string, string> | undefined)?.addr]);
  t.same(seen.sort(), [['inbound', 'rewrite', '127.0.0.3'], ['outbound', 'pass', '127.0.0.2']], 'mailmoat logs each message with the forwarded client and its direction');
});

t.test('smtpd_proxy_filter with XFORWARD: the per-address rate follows each real client', async (t) => {
  const { mailmoat, postfix } = await setup(t, 'smtpd_proxy_filter', '  max_connections_per_address_per_minute: 2\n  exempt: [127.0.0.1/32]\n', XFORWARD_POLICY);
  const codes: number[][] = [];
  for (let n = 0; n < 3; n++) codes.push(await submit(postfix.port, plain.wire, '127.0.0.3'));
  t.same(codes.slice(0, 2), Array(2).fill([220, 250, 250, 250, 354, 250]), 'two messages a minute from 127.0.0.3');
  const limited = codes[2] ?? [];
  t.ok(limited.length < 6 && (limited.at(-1) ?? 0) >= 400 && (limited.at(-1) ?? 0) < 500, `the third gets a 4xx before DATA: ${JSON.stringify(limited)}`);
  t.same(await submit(postfix.port, plain.wire, '127.0.0.4'), [220, 250, 250, 250, 354, 250], 'another client through the same Postfix is not limited');
  t.match(await mailmoat.logged('forwarded client over a limit: its message is tempfailed'), { limit: 'max_connections_per_address_per_minute', client: '127.0.0.3' }, 'mailmoat logged the limit for 127.0.0.3');
  t.same((await mailmoat.loggedTimes('transaction', 3)).map((line) => (line.xforward as Record<string, string> | undefined)?.addr), ['127.0.0.3', '127.0.0.3', '127.0.0.4']);
});
