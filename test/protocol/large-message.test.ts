// Large Message Safety (Mailtraq): over limits.large_message.abort_over the downstream is
// cut off at once and nothing reaches the upstream; the same HELO/MAIL/RCPT offered again
// is refused permanently at DATA (552 5.3.4), also after a restart; senders listed in
// exceptions are never cut off.
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpSink } from '../helpers/smtp-sink.js';
import { startTestProxy } from '../helpers/proxy.js';
import { RawClient } from '../helpers/client.js';

const big = `Subject: big\r\n\r\n${'x'.repeat(76).concat('\r\n').repeat(700)}`;

async function offer(port: number, sender: string, recipient: string, body: string): Promise<RawClient> {
  const client = await RawClient.greeted(port);
  client.send(`EHLO big.example\r\nMAIL FROM:<${sender}>\r\nRCPT TO:<${recipient}>\r\nDATA\r\n`);
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
  const saved = JSON.parse(await readFile(state, 'utf8')) as Record<string, number>;
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
