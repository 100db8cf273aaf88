/**
 * The cluster supervisor (node:cluster primary): forks `workers` serving processes
 * that share the listening sockets, replaces a worker that dies, recycles a worker
 * that asks for it (a replacement is started and listening before the old one is
 * told to drain, so no session is dropped), relays SIGHUP as a reload to every
 * worker (after checking the policy itself), and on SIGTERM/SIGINT drains every
 * worker and exits when they have. A worker that cannot start (a listener that
 * cannot bind: it says so, or exits before it listens) stops them all: exit 1. It also runs what must happen once: the alerts
 * (workers send it their flagged messages) and the quarantine's retention.
 */
import cluster, { type Worker } from 'node:cluster';
import { loadPolicyFile } from '../config/load.js';
import type { Policy } from '../config/schema.js';
import { durationMs } from '../config/schema.js';
import { createLogger, type Logger } from '../observe/log.js';
import { createAlerts, startQuarantinePurge } from '../main.js';
import { QuarantineStore } from '../quarantine/store.js';
import { createTlsSetup } from '../tls/setup.js';
import type { AlertNotifier } from '../alerts/notify.js';
import { adminUrlOf, closeSharedState, sharedStateFor } from '../state/shared-state.js';
import { QuarantineIndex } from '../state/quarantine-index.js';
import { SHARED_CLAMD_ENV, sweepLeftovers, type FromWorker, type ToWorker } from './serve.js';
import { spoolDirOf } from '../capture/spool-sweep.js';
import { ManagedClamd } from '../inspect/managed-clamd.js';
import { describeClamdAddress } from '../inspect/clamd.js';
import { startObservability } from '../observe/observability.js';

/** A worker that dies sooner than this after it started is replaced only after RESPAWN_DELAY_MS (no fork loop). */
const EARLY_DEATH_MS = 5000;
const RESPAWN_DELAY_MS = 1000;
/** Before /metrics or the status page is served, how long a worker's held-back metrics events are waited for. */
const EVENT_FLUSH_WAIT_MS = 1000;

export async function supervise(policyFile: string, policy: Readonly<Policy>, count: number): Promise<void> {
  // Workers accept from the shared listening socket themselves. Round-robin (Node's default) has this
  // process accept every connection and pass it to a worker over IPC: about 0.3 ms of CPU per
  // connection here and more in the worker, for SMTP clients that connect once per message as much as
  // the MIME walk of a 100 KB message. An idle worker is the one waiting in accept, so a busy one is not
  // handed more.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const logger = createLogger(policy.log.level).child({ role: 'supervisor', pid: process.pid });
  let housekeeping = await startHousekeeping(policy, logger);
  // Spool files left by a killed predecessor, by a worker that died, and at the very end: none may stay.
  const spoolDirs = new Set([spoolDirOf(policy.spool)]);
  const sweepSpools = (): Promise<unknown> => Promise.all([...spoolDirs].map((dir) => sweepLeftovers(dir, logger)));
  await sweepSpools();
  // antivirus.clamd: managed runs one clamd here for every worker (a clamd holds the signatures in memory).
  const clamd =
    policy.antivirus.clamd === 'managed'
      ? new ManagedClamd({ databaseDir: policy.antivirus.managed.database_dir, streamMaxBytes: policy.antivirus.max_scan_bytes, onEvent: (event, detail) => logger.warn({ detail }, event) })
      : undefined;
  const clamdAddress = clamd === undefined ? undefined : await clamd.start();
  const sharedClamd = clamdAddress === undefined ? {} : { [SHARED_CLAMD_ENV]: describeClamdAddress(clamdAddress) };
  // Metrics and the admin listener run here, fed by every worker's events.
  const observability = await startObservability(policy, logger, { processName: 'supervisor', ...(clamdAddress === undefined ? {} : { managedClamd: clamdAddress }) });
  const processName = (worker: Worker): string => `worker-${worker.id}`;
  const live = new Set<Worker>();
  /** Workers that said they listen: only they can act on a message (a starting one gets its orders when it is ready). */
  const ready = new Set<Worker>();
  /** Workers we told to stop (drain, recycle): their exit is expected. */
  const leaving = new Set<Worker>();
  const startedAt = new Map<Worker, number>();
  /** Workers that listened once: one that exits before it does cannot start (a port taken, a bad policy). */
  const everReady = new Set<Worker>();
  let stopping = false;
  let exitCode = 0;

  const fork = (): Worker => {
    const worker = cluster.fork(sharedClamd);
    live.add(worker);
    startedAt.set(worker, Date.now());
    worker.on('message', (message: FromWorker) => onMessage(worker, message));
    return worker;
  };
  const tell = (worker: Worker, message: ToWorker): void => {
    if (worker.isConnected()) worker.send(message);
  };
  // Workers batch their metrics events: before /metrics or the status page is served, each
  // worker sends what it holds (a worker that does not answer in time, or exits, is not waited for).
  const flushes = new Map<Worker, Map<number, () => void>>();
  let flushRequest = 0;
  const collectEvents = async (): Promise<void> => {
    const request = ++flushRequest;
    await Promise.all(
      [...ready].filter((worker) => worker.isConnected()).map(
        (worker) =>
          new Promise<void>((resolve) => {
            const pending = flushes.get(worker) ?? new Map<number, () => void>();
            flushes.set(worker, pending);
            const done = (): void => {
              clearTimeout(timer);
              worker.off('disconnect', done);
              pending.delete(request);
              resolve();
            };
            const timer = setTimeout(done, EVENT_FLUSH_WAIT_MS);
            pending.set(request, done);
            worker.once('disconnect', done);
            tell(worker, { type: 'flush-events', request });
          }),
      ),
    );
  };
  observability.metrics.collectWith(collectEvents);

  const onMessage = (worker: Worker, message: FromWorker): void => {
    switch (message.type) {
      case 'failed':
        fail(worker, message.reason);
        return;
      case 'listening':
        ready.add(worker);
        everReady.add(worker);
        logger.info({ worker: worker.id, workerPid: worker.process.pid }, 'worker listening');
        if (stopping) tell(worker, { type: 'drain' });
        return;
      case 'flagged':
        housekeeping.alerts?.report(message.message);
        return;
      case 'events':
        for (const event of message.events) observability.record(event);
        if (message.answers !== undefined) flushes.get(worker)?.get(message.answers)?.();
        return;
      case 'process-metrics':
        if (live.has(worker)) observability.metrics.processMetrics(processName(worker), message.metrics);
        return;
      case 'recycle': {
        if (stopping || leaving.has(worker)) return;
        logger.info({ worker: worker.id, reason: message.reason }, 'recycling a worker: its replacement starts first');
        const replacement = fork();
        replacement.on('message', (reply: FromWorker) => {
          if (reply.type !== 'listening') return;
          leaving.add(worker);
          tell(worker, { type: 'drain' });
        });
        return;
      }
    }
  };

  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker);
    flushes.delete(worker);
    observability.metrics.processMetrics(processName(worker), undefined);
    ready.delete(worker);
    const expected = leaving.delete(worker) || stopping;
    const lived = Date.now() - (startedAt.get(worker) ?? 0);
    startedAt.delete(worker);
    void sweepSpools();
    const started = everReady.delete(worker);
    if (!expected && !started) {
      fail(worker, `worker exited (code ${code}, signal ${signal}) before it listened`);
    } else if (expected) {
      logger.info({ worker: worker.id, code }, 'worker stopped');
    } else {
      logger.error({ worker: worker.id, code, signal }, 'worker exited unexpectedly: a replacement is started');
      setTimeout(() => {
        if (!stopping) fork();
      }, lived < EARLY_DEATH_MS ? RESPAWN_DELAY_MS : 0);
    }
    if (stopping && live.size === 0) {
      void Promise.all([housekeeping.stop(), clamd?.stop(), observability.close(), sweepSpools()]).then(() => {
        logger.info('stopped');
        process.exit(exitCode);
      });
    }
  });

  for (let index = 0; index < count; index++) fork();
  observability.watchListeners(() => {
    const detail = `${Math.min(ready.size, count)} of ${count} workers listening`;
    return stopping ? { ok: false, detail: 'draining' } : { ok: ready.size >= count, detail };
  });
  logger.info({ workers: count }, 'supervising workers');

  process.on('SIGHUP', () => {
    loadPolicyFile(policyFile).then(
      async (next) => {
        await housekeeping.stop();
        housekeeping = await startHousekeeping(next, logger);
        spoolDirs.add(spoolDirOf(next.spool));
        for (const worker of ready) if (!leaving.has(worker)) tell(worker, { type: 'reload' });
      },
      (error: unknown) => logger.error({ policy: policyFile, reason: (error as Error).message }, 'policy reload failed: the running policy is kept'),
    );
  });
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining every worker');
    for (const worker of ready) tell(worker, { type: 'drain' });
    // A worker still starting drains as soon as it listens (see 'listening').
  };
  // A worker that cannot start (a listener that cannot bind): stop every worker and exit 1,
  // so that a service manager sees the failure instead of a supervisor serving nothing.
  const fail = (worker: Worker, reason: string): void => {
    if (exitCode === 0) logger.fatal({ worker: worker.id, reason }, 'a worker cannot start: stopping');
    exitCode = 1;
    stop('startup failure');
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

interface Housekeeping {
  alerts: AlertNotifier | undefined;
  stop(): Promise<void>;
}

/** Alerts and the quarantine's retention, once for all workers. */
async function startHousekeeping(policy: Readonly<Policy>, logger: Logger): Promise<Housekeeping> {
  const tlsSetup = await createTlsSetup(policy);
  // A fleet (state.backend: redis://…): the alerts' batch and cap, and the quarantine index, are shared.
  const shared = sharedStateFor(policy, logger);
  const alerts = createAlerts(policy, tlsSetup.upstreamRoots, logger, shared);
  const index = shared === undefined || !policy.quarantine.enabled ? undefined : new QuarantineIndex(shared, adminUrlOf(policy), logger);
  const store = policy.quarantine.enabled ? new QuarantineStore(policy.quarantine.dir, undefined, index) : undefined;
  if (store !== undefined) index?.reindexOnConnect(() => store.list());
  const purge = store === undefined ? undefined : startQuarantinePurge(store, durationMs(policy.quarantine.keep_for) ?? 0, logger);
  return {
    alerts,
    stop: async () => {
      if (purge !== undefined) clearInterval(purge);
      await alerts?.flush();
      await closeSharedState(policy);
    },
  };
}
