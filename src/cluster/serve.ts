/**
 * One serving process: loads the policy, builds the inspector, starts the proxy,
 * and handles reload (a valid policy applies to new sessions; an invalid one is
 * logged and the running one kept) and drain (no new sessions, running ones
 * finish up to timeouts.drain_seconds, then exit 0).
 *
 * Alone (`workers: 1`) it answers SIGHUP and SIGTERM/SIGINT itself. As a cluster
 * worker it takes the same orders from the supervisor over IPC (and still drains
 * on SIGTERM, which a service manager may send to the whole group); it reports
 * when it listens (or that it cannot start, then exits 1), its process metrics, its
 * metrics events (in batches, and at once when the supervisor asks before a scrape), the
 * messages it flagged (the supervisor sends the alerts), and asks to be recycled
 * after `recycle_after` sessions or hours. Alone, a listener that cannot bind ends
 * the process with exit 1 (nothing is left running).
 */
import cluster from 'node:cluster';
import { loadPolicyFile } from '../config/load.js';
import type { Policy } from '../config/schema.js';
import { createMailInspector } from '../inspect/create.js';
import type { MailInspector } from '../inspect/inspector.js';
import { createLogger, type Logger } from '../observe/log.js';
import { startProxy, type RunningProxy } from '../main.js';
import type { FlaggedMessage } from '../quarantine/store.js';
import { parseClamdAddress } from '../inspect/clamd.js';
import { processMetricsRegistry, type ProcessMetrics, type ProxyEvent } from '../observe/metrics.js';
import { startObservability, type Observability } from '../observe/observability.js';
import { removeOwnSpoolFiles, spoolDirOf, sweepSpool } from '../capture/spool-sweep.js';

/** After timeouts.drain_seconds, how long a draining process may take to close before it exits anyway. */
export const DRAIN_GRACE_SECONDS = 10;

/** The supervisor's managed clamd, handed to workers in their environment (antivirus.clamd: managed). */
export const SHARED_CLAMD_ENV = 'MAILMOAT_SHARED_CLAMD';

/** Messages between the supervisor and its workers. */
export type ToWorker = { type: 'reload' } | { type: 'drain' } | { type: 'flush-events'; request: number };
export type FromWorker =
  | { type: 'listening' }
  | { type: 'failed'; reason: string }
  | { type: 'flagged'; message: FlaggedMessage }
  | { type: 'recycle'; reason: string }
  /** `answers`: the flush-events request this message answers, if any. */
  | { type: 'events'; events: ProxyEvent[]; answers?: number }
  | { type: 'process-metrics'; metrics: ProcessMetrics };

/**
 * A worker's metrics events wait at most this long before they go to the supervisor, in one IPC
 * message (one per message would cost a pipe write here and a read and parse there, per message).
 * The supervisor asks for them at once before it serves /metrics or the status page.
 */
export const EVENT_BATCH_INTERVAL_MS = 1000;

/** How often a worker sends its process metrics (CPU, memory, event loop) to the supervisor's /metrics. */
const PROCESS_METRICS_INTERVAL_MS = 5000;

export async function serve(policyFile: string, policy: Readonly<Policy>, role: 'single' | 'worker'): Promise<void> {
  const base = createLogger(policy.log.level);
  const logger: Logger = role === 'worker' ? base.child({ worker: cluster.worker?.id ?? 0, pid: process.pid }) : base;
  const onEvent = (event: string, detail: string): void => logger.warn({ detail }, event);
  const shared = role === 'worker' ? parseClamdAddress(process.env[SHARED_CLAMD_ENV] ?? '') : undefined;
  const inspectorOptions = { onEvent, ...(shared === undefined ? {} : { sharedManagedClamd: shared }) };
  // Spool files hold mail: whatever way this process exits, its own go with it (SIGKILL: the next sweep).
  const spoolDirs = new Set([spoolDirOf(policy.spool)]);
  process.on('exit', () => spoolDirs.forEach(removeOwnSpoolFiles));
  if (role === 'single') await sweepLeftovers(spoolDirOf(policy.spool), logger);
  const send = (message: FromWorker): void => {
    if (role === 'worker') process.send?.(message);
  };
  // Metrics events go to the supervisor in batches (EVENT_BATCH_INTERVAL_MS), or at once when it asks.
  let events: ProxyEvent[] = [];
  let batchTimer: NodeJS.Timeout | undefined;
  const sendEvents = (answers?: number, sent?: () => void): void => {
    clearTimeout(batchTimer);
    batchTimer = undefined;
    const message: FromWorker = answers === undefined ? { type: 'events', events } : { type: 'events', events, answers };
    events = [];
    if (role === 'worker' && process.send !== undefined) process.send(message, undefined, {}, () => sent?.());
    else sent?.();
  };
  const queueEvent = (event: ProxyEvent): void => {
    if (events.push(event) === 1) batchTimer = setTimeout(() => sendEvents(), EVENT_BATCH_INTERVAL_MS);
  };
  let inspector: MailInspector;
  let created: MailInspector | undefined;
  let observability: Observability | undefined;
  let proxy: RunningProxy;
  try {
    inspector = created = await createMailInspector(policy, inspectorOptions);
    // Metrics and the admin listener: here when alone, in the supervisor for workers.
    observability = role === 'single' ? await startObservability(policy, logger) : undefined;
    const recorder = observability;
    proxy = await startProxy(
      policy,
      inspector,
      logger,
      role === 'worker'
        ? { onFlagged: (message) => send({ type: 'flagged', message }), onEvent: queueEvent }
        : { onEvent: (event) => recorder?.record(event) },
    );
  } catch (error) {
    // A listener that cannot bind, a scanner that cannot start: nothing may keep this process
    // alive serving nothing (a managed clamd, the admin listener, a worker's IPC channel).
    const reason = (error as Error).message;
    logger.fatal({ reason }, 'cannot start: exiting');
    await Promise.allSettled([created?.close(), observability?.close()]);
    if (role === 'single') throw error;
    // The supervisor stops every worker and exits 1 (it would also on this exit alone; the message says why).
    await new Promise<void>((resolve) => (process.send === undefined ? resolve() : process.send({ type: 'failed', reason } satisfies FromWorker, undefined, {}, () => resolve())));
    process.exit(1);
  }
  let draining = false;
  const listening = proxy.addresses.map((address) => `${address.address}:${address.port}`).join(' ');
  observability?.watchListeners(() => (draining ? { ok: false, detail: 'draining' } : { ok: true, detail: `listening on ${listening}` }));
  // A worker's process metrics reach the supervisor before it counts the worker as listening.
  if (role === 'worker') await reportProcessMetrics(send);
  send({ type: 'listening' });

  let reloading = Promise.resolve();
  const reload = async (): Promise<void> => {
    let next: Readonly<Policy>;
    let nextInspector: MailInspector;
    try {
      next = await loadPolicyFile(policyFile);
      nextInspector = await createMailInspector(next, inspectorOptions);
    } catch (error) {
      logger.error({ policy: policyFile, reason: (error as Error).message }, 'policy reload failed: the running policy is kept');
      return;
    }
    try {
      const { retired } = await proxy.reload(next, nextInspector);
      spoolDirs.add(spoolDirOf(next.spool));
      const previous = inspector;
      inspector = nextInspector;
      retired.then(() => previous.close()).catch((error: unknown) => logger.warn({ err: error }, 'closing the previous inspector failed'));
      logger.info({ policy: policyFile }, 'policy reloaded: new sessions use it');
    } catch (error) {
      await nextInspector.close();
      logger.error({ policy: policyFile, reason: (error as Error).message }, 'policy reload failed: the running policy is kept');
    }
  };

  const drain = (why: string): void => {
    if (draining) return;
    draining = true;
    logger.info({ signal: why, drainSeconds: policy.timeouts.drain_seconds }, 'draining: no new sessions, running ones may finish');
    // The drain ends every session at its deadline; this is the last resort if something still holds on.
    setTimeout(() => process.exit(1), (policy.timeouts.drain_seconds + DRAIN_GRACE_SECONDS) * 1000).unref();
    proxy
      .drain()
      .then(() => inspector.close())
      .then(() => observability?.close())
      .then(
        () => {
          logger.info('stopped');
          // The last events reach the supervisor before the process goes.
          if (role === 'worker') sendEvents(undefined, () => process.exit(0));
          else process.exit(0);
        },
        () => process.exit(1),
      );
  };

  process.on('SIGTERM', () => drain('SIGTERM'));
  process.on('SIGINT', () => drain('SIGINT'));
  if (role === 'single') {
    process.on('SIGHUP', () => {
      reloading = reloading.then(reload);
    });
    return;
  }
  // A worker: the supervisor relays SIGHUP; a SIGHUP sent to the whole group is the same order.
  process.on('SIGHUP', () => undefined);
  process.on('message', (message: ToWorker) => {
    if (message.type === 'reload') reloading = reloading.then(reload);
    if (message.type === 'drain') drain('supervisor');
    if (message.type === 'flush-events') sendEvents(message.request);
  });
  watchRecycling(proxy.listeners, policy, (reason) => send({ type: 'recycle', reason }));
}

/** Removes the spool files of processes that are gone (a previous run killed, a worker that died). */
export async function sweepLeftovers(spoolDir: string, logger: Logger): Promise<void> {
  try {
    const swept = await sweepSpool(spoolDir);
    if (swept.files > 0) logger.warn({ spoolDir, files: swept.files, bytes: swept.bytes }, 'spool files left by a process that is gone: removed');
  } catch (error) {
    logger.error({ spoolDir, reason: (error as Error).message }, 'spool sweep failed');
  }
}

/** Asks for a replacement once, after recycle_after.sessions sessions or recycle_after.hours hours (MailScanner's restarts). */
function watchRecycling(listeners: readonly { on(event: 'session', listener: () => void): unknown }[], policy: Readonly<Policy>, ask: (reason: string) => void): void {
  const { sessions, hours } = policy.recycle_after;
  let asked = false;
  const once = (reason: string): void => {
    if (asked) return;
    asked = true;
    ask(reason);
  };
  if (sessions > 0) {
    let count = 0;
    for (const listener of listeners) {
      listener.on('session', () => {
        if (++count >= sessions) once(`${count} sessions`);
      });
    }
  }
  if (hours > 0) setTimeout(() => once(`${hours} hours`), hours * 3_600_000).unref();
}

/** A worker's process metrics, now and every PROCESS_METRICS_INTERVAL_MS, for the supervisor's /metrics. */
async function reportProcessMetrics(send: (message: FromWorker) => void): Promise<void> {
  const registry = processMetricsRegistry();
  const report = async (): Promise<void> => send({ type: 'process-metrics', metrics: await registry.getMetricsAsJSON() });
  await report();
  setInterval(() => void report().catch(() => undefined), PROCESS_METRICS_INTERVAL_MS).unref();
}
