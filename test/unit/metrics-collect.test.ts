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
    recordEvent(metrics, { type: 'transaction', summary });
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
