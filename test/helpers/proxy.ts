/**
 * Starts mailmoat in-process for a test: the default policy plus the test's
 * overrides and one SMTP (or POP3) listener on an ephemeral loopback port. Logs are
 * captured as parsed JSON lines so tests can assert on them.
 */
import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { validatePolicy } from '../../src/config/load.js';
import type { ListenerPolicy, Policy } from '../../src/config/schema.js';
import type { Inspector } from '../../src/inspect/api.js';

/** Protocol tests exercise the relay itself: an inspector that passes every message. */
export const passInspector: Inspector = { inspect: async () => ({ action: 'pass' }) };
import { createLogger, type RetrievalSummary, type TransactionSummary } from '../../src/observe/log.js';
import { startProxy, type ProxyOptions } from '../../src/main.js';

export interface TestProxy {
  port: number;
  logs: Record<string, unknown>[];
  rawLogs: string[];
  transactions: TransactionSummary[];
  retrievals: RetrievalSummary[];
  activeSessions(): number;
  /** How many sessions had STARTTLS/STLS passed through uninspected. */
  passthroughs(): number;
  quarantineDir: string;
}

type Overrides = { [K in keyof Policy]?: Partial<Policy[K]> };

/** `proxyOptions`: collaborators handed to startProxy (an alert clock). */
export function startTestProxy(t: Test, upstreamPort: number, overrides: Overrides = {}, inspector: Inspector = passInspector, proxyOptions: ProxyOptions = {}): Promise<TestProxy> {
  return startListener(t, 'smtp', `127.0.0.1:${upstreamPort}`, overrides, inspector, {}, proxyOptions);
}

/** A POP3 listener in front of `upstream` (a port on 127.0.0.1, or from-username). */
export function startTestPop3Proxy(t: Test, upstream: number | 'from-username', overrides: Overrides = {}, inspector: Inspector = passInspector): Promise<TestProxy> {
  return startListener(t, 'pop3', upstream === 'from-username' ? upstream : `127.0.0.1:${upstream}`, overrides, inspector);
}

/** The listener's own settings besides protocol, listen and upstream (TLS, PROXY protocol). */
export type ListenerSettings = Partial<Pick<ListenerPolicy, 'starttls' | 'tls' | 'tls_name' | 'proxy_protocol'>>;

export async function startListener(t: Test, protocol: 'smtp' | 'pop3', upstream: string, overrides: Overrides, inspector: Inspector, settings: ListenerSettings = {}, proxyOptions: ProxyOptions = {}): Promise<TestProxy> {
  // Each test proxy has its own quarantine folder (the default one is a system path).
  const quarantineDir = overrides.quarantine?.dir ?? (await mkdtemp(join(tmpdir(), 'mailmoat-quarantine-')));
  if (overrides.quarantine?.dir === undefined) t.teardown(() => rm(quarantineDir, { recursive: true, force: true }));
  const policy = validatePolicy(
    {
      ...overrides,
      quarantine: { ...overrides.quarantine, dir: quarantineDir },
      // Every test client comes from 127.0.0.1 and some connect hundreds of times: the per-address
      // limits are raised unless the test is about them.
      limits: { max_sessions_per_address: 1000, max_connections_per_address_per_minute: 100_000, ...overrides.limits },
      listeners: [{ protocol, listen: '127.0.0.1:0', upstream, ...settings }],
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
  const proxy = await startProxy(policy, inspector, createLogger('debug', sink), proxyOptions);
  const transactions: TransactionSummary[] = [];
  const listener = proxy.listeners[0];
  if (listener === undefined) throw new Error('no listener');
  listener.on('transaction', (summary) => transactions.push(summary));
  const retrievals: RetrievalSummary[] = [];
  listener.on('retrieval', (summary) => retrievals.push(summary));
  let passthroughs = 0;
  listener.on('passthrough', () => passthroughs++);
  t.teardown(() => proxy.close());
  return { port: proxy.addresses[0]?.port ?? 0, logs, rawLogs, transactions, retrievals, activeSessions: () => listener.activeSessions, passthroughs: () => passthroughs, quarantineDir };
}
