/**
 * Boot: start one listener per policy entry with the collaborators handed in
 * (TLS setup, quarantine, alerts), apply the quarantine's retention hourly; reload
 * a policy for new sessions (SIGHUP), drain (SIGTERM) or close. The CLI and the demo
 * both start the proxy here.
 */
import type { AddressInfo } from 'node:net';
import type { Policy } from './config/schema.js';
import { Listener } from './accept/listener.js';
import type { Inspector } from './inspect/api.js';
import type { Logger } from './observe/log.js';
import { createTlsSetup } from './tls/setup.js';
import type { TlsSetup } from './tls/upgrade.js';
import type { LargeMessageSafety } from './session/smtp/session.js';
import { LargeMessageMemory } from './capture/large-messages.js';
import { wildcardPattern } from './policy/wildcard.js';
import { QuarantineStore, type FlaggedMessage } from './quarantine/store.js';
import type { ProxyEvent } from './observe/metrics.js';
import { durationMs } from './config/schema.js';
import { AlertNotifier, realClock, type AlertClock } from './alerts/notify.js';
import { submissionUpstream } from './policy/resolve.js';
import { hostname } from 'node:os';
import { adminUrlOf, closeSharedState, sharedStateFor, type SharedState } from './state/shared-state.js';
import { SharedAdmission } from './state/admission.js';
import { SharedLargeMessages } from './state/large-messages.js';
import { SharedAlerts } from './state/alerts.js';
import { QuarantineIndex } from './state/quarantine-index.js';

/** How often quarantine.keep_for is applied. */
const QUARANTINE_PURGE_INTERVAL_MS = 60 * 60 * 1000;

export interface RunningProxy {
  listeners: readonly Listener[];
  addresses: readonly AddressInfo[];
  /** Closes everything at once (tests, the demo). */
  close(): Promise<void>;
  /**
   * SIGHUP: new sessions use `policy` and `inspector`; running ones finish with the old.
   * Rejects (and changes nothing) when the policy's listeners differ in number, protocol,
   * listen address or TLS mode: those need a restart. Resolves with a promise that settles
   * once no session uses the old inspector (the caller closes it then).
   */
  reload(policy: Readonly<Policy>, inspector: Inspector): Promise<{ retired: Promise<void> }>;
  /** SIGTERM: stop accepting, let sessions finish up to `timeouts.drain_seconds`, then 421 / -ERR. */
  drain(): Promise<void>;
}

/** The side collaborators of one policy: TLS, quarantine (and its purge), alerts. */
interface Collaborators {
  tlsSetup: TlsSetup;
  quarantine: QuarantineStore | undefined;
  largeMessages: LargeMessageSafety | undefined;
  alerts: AlertNotifier | undefined;
  purge: NodeJS.Timeout | undefined;
  /** The fleet's per-address counts (state.backend: redis://…). */
  sharedAdmission: SharedAdmission | undefined;
  /** What stops watching the shared state when this policy is retired. */
  stopWatching: (() => void)[];
}

/**
 * `housekeeping: false` (a cluster worker): no alerts and no quarantine purge here, the
 * supervisor runs them once for all workers.
 */
async function createCollaborators(policy: Readonly<Policy>, logger: Logger, housekeeping: boolean, alertClock: AlertClock): Promise<Collaborators> {
  const tlsSetup = await createTlsSetup(policy);
  const shared = sharedStateFor(policy, logger);
  const index = shared === undefined || !policy.quarantine.enabled ? undefined : new QuarantineIndex(shared, adminUrlOf(policy), logger);
  const quarantine = policy.quarantine.enabled ? new QuarantineStore(policy.quarantine.dir, undefined, index) : undefined;
  const stopWatching: (() => void)[] = [];
  if (index !== undefined && quarantine !== undefined && housekeeping) stopWatching.push(index.reindexOnConnect(() => quarantine.list()));
  const alerts = housekeeping ? createAlerts(policy, tlsSetup.upstreamRoots, logger, shared, alertClock) : undefined;
  const purge = quarantine === undefined || !housekeeping ? undefined : startQuarantinePurge(quarantine, durationMs(policy.quarantine.keep_for) ?? 0, logger);
  const sharedAdmission = shared === undefined ? undefined : new SharedAdmission(shared, policy.state.session_lease_seconds * 1000);
  const sharedKeys = shared === undefined || policy.limits.large_message.abort_over === 0 ? undefined : new SharedLargeMessages(shared, logger);
  if (sharedKeys !== undefined) stopWatching.push(() => sharedKeys.stop());
  return { tlsSetup, quarantine, alerts, purge, largeMessages: largeMessageSafety(policy, sharedKeys), sharedAdmission, stopWatching };
}

/** limits.large_message, when abort_over is set. */
function largeMessageSafety(policy: Readonly<Policy>, sharedKeys: SharedLargeMessages | undefined): LargeMessageSafety | undefined {
  const settings = policy.limits.large_message;
  if (settings.abort_over === 0) return undefined;
  const exceptions = settings.exceptions.map(wildcardPattern);
  return {
    memory: new LargeMessageMemory(settings.state_file, durationMs(settings.remember_for) ?? 0, Date.now, sharedKeys),
    abortOverBytes: settings.abort_over,
    exempt: (sender) => exceptions.some((pattern) => pattern.test(sender.replace(/^<|>$/g, ''))),
  };
}

export interface ProxyOptions {
  /** A cluster worker hands flagged messages to the supervisor (which sends the alerts) instead of alerting itself. */
  onFlagged?: (message: FlaggedMessage) => void;
  /** Every session event (metrics: recorded here, or sent to the supervisor by a worker). */
  onEvent?: (event: ProxyEvent) => void;
  /** The alerts' time (default real timers; a test drives its own). */
  alertClock?: AlertClock;
}

async function retire(collaborators: Collaborators): Promise<void> {
  if (collaborators.purge !== undefined) clearInterval(collaborators.purge);
  collaborators.sharedAdmission?.close();
  for (const stop of collaborators.stopWatching) stop();
  await collaborators.alerts?.flush();
}

/** The listener settings a reload cannot change (the socket is bound, the TLS mode shapes the sessions). */
const bindingOf = (listener: Policy['listeners'][number]): string => `${listener.protocol} ${listener.listen} ${listener.tls}`;

export async function startProxy(policy: Readonly<Policy>, inspector: Inspector, logger: Logger, options: ProxyOptions = {}): Promise<RunningProxy> {
  if (policy.listeners.length === 0) throw new Error('the policy has no listeners: add at least one under "listeners"');
  const housekeeping = options.onFlagged === undefined;
  let current = { policy, collaborators: await createCollaborators(policy, logger, housekeeping, options.alertClock ?? realClock) };
  const listenerOptions = (index: number, active: typeof current, activeInspector: Inspector) => {
    const listener = active.policy.listeners[index];
    if (listener === undefined) throw new Error(`no listener ${index}`);
    const { tlsSetup, quarantine, largeMessages, sharedAdmission } = active.collaborators;
    return { listener, policy: active.policy, inspector: activeInspector, logger, tlsSetup, quarantine, largeMessages, sharedAdmission };
  };
  const listeners = policy.listeners.map((_, index) => new Listener(listenerOptions(index, current, inspector)));
  const addresses: AddressInfo[] = [];
  try {
    for (const listener of listeners) addresses.push(await listener.listen());
  } catch (error) {
    await Promise.all(listeners.map((listener) => listener.close()));
    await retire(current.collaborators);
    throw error;
  }
  // Flagged messages go to whichever alert notifier is current (or to the supervisor).
  const onFlagged = options.onFlagged ?? ((message: FlaggedMessage) => current.collaborators.alerts?.report(message));
  for (const listener of listeners) listener.on('flagged', onFlagged);
  const onEvent = options.onEvent;
  // mailmoat_state_backend_up follows the shared state's connection.
  if (onEvent !== undefined) sharedStateFor(policy, logger)?.watch((up) => onEvent({ type: 'state', up }));
  if (onEvent !== undefined) {
    listeners.forEach((listener, index) => {
      const protocol = policy.listeners[index]?.protocol ?? 'smtp';
      listener.on('session', () => onEvent({ type: 'session', protocol }));
      listener.on('transaction', (summary) => onEvent({ type: 'transaction', summary, at: Date.now() }));
      listener.on('retrieval', (summary) => onEvent({ type: 'retrieval', summary, at: Date.now() }));
      listener.on('flagged', (message) => onEvent({ type: 'flagged', message }));
      listener.on('passthrough', () => onEvent({ type: 'passthrough' }));
      listener.on('limit', (limit) => onEvent({ type: 'limit', limit }));
    });
  }
  return {
    listeners,
    addresses,
    close: async () => {
      await Promise.all(listeners.map((listener) => listener.close()));
      await retire(current.collaborators);
      await closeSharedState(current.policy);
    },
    reload: async (next, nextInspector) => {
      const before = current.policy.listeners.map(bindingOf).join('\n');
      const after = next.listeners.map(bindingOf).join('\n');
      if (before !== after) throw new Error('listeners changed in number, protocol, listen address or tls: restart mailmoat to apply them');
      const previous = current;
      current = { policy: next, collaborators: await createCollaborators(next, logger, housekeeping, options.alertClock ?? realClock) };
      const retired = Promise.all(listeners.map((listener, index) => listener.update(listenerOptions(index, current, nextInspector)))).then(() => retire(previous.collaborators));
      return { retired };
    },
    drain: async () => {
      await Promise.all(listeners.map((listener) => listener.drain(current.policy.timeouts.drain_seconds)));
      await retire(current.collaborators);
    },
  };
}

/** The alert notifier, when alerts.to names someone or parties are to be notified. */
export function createAlerts(policy: Readonly<Policy>, roots: readonly string[], logger: Logger, shared?: SharedState, clock: AlertClock = realClock): AlertNotifier | undefined {
  const { alerts } = policy;
  if (alerts.to.length === 0 && !alerts.notify_recipients && !alerts.notify_sender) return undefined;
  const upstream = submissionUpstream(policy, alerts.via);
  if (upstream === undefined) throw new Error('alerts need an SMTP server to submit to: set alerts.via, or add an SMTP listener with a fixed upstream');
  const from = alerts.from === '' ? `mailmoat@${hostname()}` : alerts.from;
  return new AlertNotifier(
    { to: alerts.to, from, batchSeconds: alerts.batch_seconds, maxPerHour: alerts.max_per_hour, notifyRecipients: alerts.notify_recipients, notifySender: alerts.notify_sender },
    { upstream, roots, heloName: hostname() },
    logger,
    clock,
    shared === undefined ? undefined : new SharedAlerts(shared),
  );
}

/** Applies quarantine.keep_for now and every hour. */
export function startQuarantinePurge(store: QuarantineStore, keepForMs: number, logger: Logger): NodeJS.Timeout {
  const run = (): void => {
    store.purge(keepForMs).then(
      (removed) => {
        if (removed > 0) logger.info({ removed, dir: store.dir }, 'quarantine entries past keep_for removed');
      },
      (error: unknown) => logger.warn({ err: error, dir: store.dir }, 'quarantine purge failed'),
    );
  };
  run();
  const timer = setInterval(run, QUARANTINE_PURGE_INTERVAL_MS);
  timer.unref();
  return timer;
}
