/**
 * Starts mailmoat in-process for a test: the default policy plus the test's
 * overrides and one SMTP listener on an ephemeral loopback port. Logs are
 * captured as parsed JSON lines so tests can assert on them.
 */
import { Writable } from 'node:stream';
import type { Test } from 'tap';
import { validatePolicy } from '../../src/config/load.js';
import type { Policy } from '../../src/config/schema.js';
import type { Inspector } from '../../src/inspect/api.js';

/** Protocol tests exercise the relay itself: an inspector that passes every message. */
export const passInspector: Inspector = { inspect: async () => ({ action: 'pass' }) };
import { createLogger, type TransactionSummary } from '../../src/observe/log.js';
import { startProxy } from '../../src/main.js';

export interface TestProxy {
  port: number;
  logs: Record<string, unknown>[];
  rawLogs: string[];
  transactions: TransactionSummary[];
  activeSessions(): number;
}

type Overrides = { [K in keyof Policy]?: Partial<Policy[K]> };

export async function startTestProxy(t: Test, upstreamPort: number, overrides: Overrides = {}, inspector: Inspector = passInspector): Promise<TestProxy> {
  const policy = validatePolicy(
    {
      ...overrides,
      listeners: [{ protocol: 'smtp', listen: '127.0.0.1:0', upstream: `127.0.0.1:${upstreamPort}` }],
      log: { level: 'debug' },
    },
    'test',
  );
  const rawLogs: string[] = [];
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        rawLogs.push(line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  const proxy = await startProxy(policy, inspector, createLogger('debug', sink));
  const transactions: TransactionSummary[] = [];
  const listener = proxy.listeners[0];
  if (listener === undefined) throw new Error('no listener');
  listener.on('transaction', (summary) => transactions.push(summary));
  t.teardown(() => proxy.close());
  return { port: proxy.addresses[0]?.port ?? 0, logs, rawLogs, transactions, activeSessions: () => listener.activeSessions };
}
