// The one summary builder both dialects use (src/session/summary.ts): the keys of the
// transaction and retrieval log lines (observe/log.ts), optional keys left out when unknown.
import t from 'tap';
import { performance } from 'node:perf_hooks';
import { summarize, type SummaryLegs } from '../../src/session/summary.js';
import type { RetrievalSummary, TransactionSummary } from '../../src/observe/log.js';

const legs: SummaryLegs = { session: 's1', downstream: '192.0.2.1:4000', upstream: '198.51.100.2:25', tls: 'intercepted', inspected: true };

t.test('an SMTP transaction: the envelope, the verdict, the upstream reply and the duration', async (t) => {
  const startedAt = performance.now() - 1500;
  const summary: TransactionSummary = summarize(
    legs,
    { direction: 'inbound', helo: 'client.example', sender: 'a@example.com', recipients: 2, upstreamReply: '250 2.0.0 Ok' },
    { size: 1234, verdict: 'rewrite', reason: 'stripped 1 part', quarantine: '20261207T162200Z-0123abcd', startedAt },
  );
  const { durationMs, ...rest } = summary;
  t.same(rest, {
    session: 's1',
    downstream: '192.0.2.1:4000',
    upstream: '198.51.100.2:25',
    tls: 'intercepted',
    inspected: true,
    direction: 'inbound',
    helo: 'client.example',
    sender: 'a@example.com',
    recipients: 2,
    upstreamReply: '250 2.0.0 Ok',
    size: 1234,
    verdict: 'rewrite',
    reason: 'stripped 1 part',
    quarantine: '20261207T162200Z-0123abcd',
  });
  t.ok(Number.isInteger(durationMs) && durationMs >= 1500, 'whole milliseconds since the start');
});

t.test('a POP3 retrieval: no reason and no quarantine keys when there are none', async (t) => {
  const summary: RetrievalSummary = summarize(
    { ...legs, upstream: 'pop.example:110', tls: 'none', inspected: false },
    { user: 'alice', command: 'RETR', message: '3', keptAlive: false },
    { size: 10, verdict: 'pass', reason: undefined, quarantine: undefined, startedAt: performance.now() },
  );
  t.same(Object.keys(summary).sort(), ['command', 'downstream', 'durationMs', 'inspected', 'keptAlive', 'message', 'session', 'size', 'tls', 'upstream', 'user', 'verdict']);
  t.match(summary, { user: 'alice', command: 'RETR', message: '3', keptAlive: false, verdict: 'pass', size: 10, inspected: false, tls: 'none' });
});
