// Large Message Safety (Mailtraq): over limits.large_message.abort_over the downstream is
// cut off at once and nothing reaches the upstream; the same message (client network,
// HELO/MAIL/RCPT and its declared SIZE=) offered again is refused permanently at DATA
// (552 5.3.4), also after a restart; a message under the limit is never refused, whatever
// was cut before with the same triple (no poisoning); senders listed in exceptions are
// never cut off.
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpSink } from '../helpers/smtp-sink.js';
import { startTestProxy } from '../helpers/proxy.js';
import { RawClient } from '../helpers/client.js';
import { keyOf } from '../../src/capture/large-messages.js';
import { setTimeout as sleep } from 'node:timers/promises';

const big = `Subject: big\r\n\r\n${'x'.repeat(76).concat('\r\n').repeat(700)}`;

/**
 * The state file once the proxy has saved it: remember() writes it after the cut connection is
 * reported (a temporary file, then a rename), so the test waits for the rename, up to 10 s.
 */
async function savedState(state: string): Promise<Record<string, number>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return JSON.parse(await readFile(state, 'utf8')) as Record<string, number>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 500) throw error;
      await sleep(20);
    }
  }
}

async function offer(port: number, sender: string, recipient: string, body: string, declare = true): Promise<RawClient> {
  const client = await RawClient.greeted(port);
  client.send(`EHLO big.example\r\nMAIL FROM:<${sender}>${declare ? ` SIZE=${body.length}` : ''}\r\nRCPT TO:<${recipient}>\r\nDATA\r\n`);
  const replies = await client.waitForReplies(5);
  if (replies[4]?.code === 354) client.send(`${body}.\r\n`);
  return client;
}

t.test('cut, remembered, refused again (also after a restart), exceptions pass', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-lms-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const state = join(dir, 'large-messages.json');
  const overrides = { limits: { large_message: { abort_over: 20_000, remember_for: '1h', exceptions: ['*@trusted.example'], state_file: state } } };
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port, overrides);

  const cut = await offer(proxy.port, 'big@example.org', 'bob@example.net', big);
  t.ok(await cut.waitForClose(5000), 'the downstream connection is cut');
  t.same(cut.codes(), [220, 250, 250, 250, 354], 'no final reply: the sender sees a broken connection');
  t.equal((await sink.messages(0, 300)).length, 0, 'the upstream transaction was abandoned');
  t.match(proxy.transactions[0], { verdict: 'aborted', reason: 'large message safety: over 20000 bytes' });
  const saved = await savedState(state);
  t.equal(Object.keys(saved).length, 1, 'one key is saved');
  t.match(Object.keys(saved)[0], /^[0-9a-f]{64}$/, 'as a hash, not the addresses');
  t.ok((Object.values(saved)[0] ?? 0) > Date.now() + 3_500_000, 'until remember_for is over');

  const again = await offer(proxy.port, 'big@example.org', 'bob@example.net', big);
  t.same(again.replies[4], { code: 552, lines: ['5.3.4 Message size exceeds fixed limit; this message was cut off before and is not accepted again'] });
  again.close();

  const other = await offer(proxy.port, 'big@example.org', 'carol@example.net', 'Subject: small\r\n\r\nhi\r\n');
  t.equal((await other.waitForReplies(6))[5]?.code, 250, 'another transaction is not affected');
  other.close();

  const trusted = await offer(proxy.port, 'backup@trusted.example', 'bob@example.net', big);
  t.equal((await trusted.waitForReplies(6))[5]?.code, 250, 'an exception is never cut off');
  trusted.close();

  const restarted = await startTestProxy(t, sink.port, overrides);
  const afterRestart = await offer(restarted.port, 'big@example.org', 'bob@example.net', big);
  t.equal(afterRestart.replies[4]?.code, 552, 'remembered across a restart');
  afterRestart.close();
});

t.test('no poisoning: a forged triple cut off never refuses the real sender\'s message under the limit', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-lms-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const state = join(dir, 'large-messages.json');
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port, { limits: { large_message: { abort_over: 20_000, remember_for: '1h', exceptions: [], state_file: state } } });
  const forged = await offer(proxy.port, 'ceo@example.org', 'bank@example.net', big);
  t.ok(await forged.waitForClose(5000), 'the forged oversized message is cut off');
  const small = 'Subject: ordinary\r\n\r\n'.concat('y'.repeat(470), '\r\n');
  for (const declare of [true, false]) {
    const real = await offer(proxy.port, 'ceo@example.org', 'bank@example.net', small, declare);
    t.equal((await real.waitForReplies(6))[5]?.code, 250, `the real sender's 500-byte message is accepted (${declare ? 'with' : 'without'} SIZE=)`);
    real.close();
  }
  t.equal((await sink.messages(2, 5000)).length, 2, 'both delivered');

  const undeclared = await offer(proxy.port, 'other@example.org', 'bob@example.net', big, false);
  t.ok(await undeclared.waitForClose(5000), 'an oversized message without SIZE= is cut off');
  const retried = await offer(proxy.port, 'other@example.org', 'bob@example.net', big, false);
  t.equal(retried.replies[4]?.code, 354, 'and not refused at DATA next time: nothing told its size before reading it');
  t.ok(await retried.waitForClose(5000), 'it is cut off again');
});

t.test('the key: the client network, the triple and the declared size', async (t) => {
  const base = { client: '192.0.2.7', helo: 'mx.example', sender: '<a@example.org>', recipients: ['<b@example.net>'], declaredSize: 30_000_000 };
  t.equal(keyOf(base), keyOf({ ...base, client: '::ffff:192.0.2.7' }), 'an IPv4-mapped address is the IPv4 client');
  t.not(keyOf(base), keyOf({ ...base, client: '192.0.2.8' }), 'another IPv4 address is another client');
  const v6 = { ...base, client: '2001:db8:1:2::7' };
  t.equal(keyOf(v6), keyOf({ ...v6, client: '2001:db8:1:2:aaaa::9' }), 'IPv6: one /64 is one client');
  t.not(keyOf(v6), keyOf({ ...v6, client: '2001:db8:1:3::7' }), 'another /64 is another');
  t.not(keyOf(base), keyOf({ ...base, declaredSize: 500 }), 'another declared size is another message');
  t.not(keyOf(base), keyOf({ ...base, declaredSize: undefined }));
  t.equal(keyOf(base), keyOf({ ...base, helo: 'MX.EXAMPLE', recipients: ['<B@example.net>'] }), 'case does not matter');
});
