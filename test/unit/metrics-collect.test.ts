// A cluster's workers hold their metrics events back (EVENT_BATCH_INTERVAL_MS) and send them when
// the supervisor asks: every read of the metrics (/metrics, the status snapshot) first awaits the
// collector, so what it brings in is in the answer.
import t from 'tap';
import { Metrics, recordEvent } from '../../src/observe/metrics.js';

const summary = {
  session: 's-1',
  downstream: '127.0.0.1:1',
  upstream: '127.0.0.1:2',
  direction: 'inbound' as const,
  tls: 'none' as const,
  inspected: true,
  helo: 'client.test',
  sender: '<a@example.org>',
  recipients: 1,
  size: 123,
  verdict: 'pass' as const,
  upstreamReply: '250 ok',
  durationMs: 4,
};

t.test('the exposition and the snapshot include what the collector brings in', async (t) => {
  const metrics = new Metrics();
  let collected = 0;
  metrics.collectWith(async () => {
    collected++;
    await Promise.resolve();
    recordEvent(metrics, { type: 'transaction', summary, at: Date.now() });
  });
  const text = await metrics.registry.metrics();
  t.match(text, /^mailmoat_messages_total\{[^}]*verdict="pass"[^}]*\} 1$/m, 'the held-back transaction is counted');
  const snapshot = await metrics.currentSnapshot();
  t.equal(snapshot.verdicts.pass, 2, 'the second read collected again');
  t.equal(collected, 2);
});

t.test('without a collector, reads answer with what was recorded', async (t) => {
  const metrics = new Metrics();
  recordEvent(metrics, { type: 'session', protocol: 'smtp' });
  t.equal((await metrics.currentSnapshot()).sessions.smtp, 1);
  t.match(await metrics.registry.metrics(), /^mailmoat_sessions_total\{protocol="smtp"\} 1$/m);
});

t.test('recent verdicts are in the order they happened, whatever order the workers\' batches arrive in', async (t) => {
  const metrics = new Metrics(undefined, () => Date.parse('2026-12-07T12:00:10Z'));
  const at = (second: number) => Date.parse(`2026-12-07T12:00:0${second}Z`);
  // Worker A's batch (messages 1 and 3) reaches the supervisor before worker B's (message 2).
  recordEvent(metrics, { type: 'transaction', summary: { ...summary, verdict: 'pass' }, at: at(1) });
  recordEvent(metrics, { type: 'transaction', summary: { ...summary, verdict: 'rewrite', reason: 'third' }, at: at(3) });
  recordEvent(metrics, { type: 'retrieval', summary: { session: 's-2', downstream: 'd', upstream: 'u', user: 'alice', tls: 'none', command: 'RETR', message: '1', inspected: true, size: 5, verdict: 'rewrite', reason: 'second', keptAlive: false, durationMs: 1 }, at: at(2) });
  const recent = (await metrics.currentSnapshot()).recent;
  t.same(recent.map((entry) => [entry.time, entry.verdict, entry.reason]), [
    ['2026-12-07T12:00:03.000Z', 'rewrite', 'third'],
    ['2026-12-07T12:00:02.000Z', 'rewrite', 'second'],
    ['2026-12-07T12:00:01.000Z', 'pass', ''],
  ], 'newest first, by when each happened');
});
