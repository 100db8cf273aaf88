/**
 * Boot: start one listener per policy entry with the collaborators handed in
 * (TLS setup, quarantine, alerts), apply the quarantine's retention hourly, and
 * stop them all on request (pending alerts are sent first). The CLI and the demo both start the proxy here.
 */
import type { AddressInfo } from 'node:net';
import type { Policy } from './config/schema.js';
import { Listener } from './accept/listener.js';
import type { Inspector } from './inspect/api.js';
import type { Logger } from './observe/log.js';
import { createTlsSetup } from './tls/setup.js';
import { QuarantineStore } from './quarantine/store.js';
import { durationMs } from './config/schema.js';
import { AlertNotifier } from './alerts/notify.js';
import { submissionUpstream } from './policy/resolve.js';
import { hostname } from 'node:os';

/** How often quarantine.keep_for is applied. */
const QUARANTINE_PURGE_INTERVAL_MS = 60 * 60 * 1000;

export interface RunningProxy {
  listeners: readonly Listener[];
  addresses: readonly AddressInfo[];
  close(): Promise<void>;
}

export async function startProxy(policy: Readonly<Policy>, inspector: Inspector, logger: Logger): Promise<RunningProxy> {
  if (policy.listeners.length === 0) throw new Error('the policy has no listeners: add at least one under "listeners"');
  const tlsSetup = await createTlsSetup(policy);
  const quarantine = policy.quarantine.enabled ? new QuarantineStore(policy.quarantine.dir) : undefined;
  const listeners = policy.listeners.map((listener) => new Listener({ listener, policy, inspector, logger, tlsSetup, quarantine }));
  const addresses: AddressInfo[] = [];
  try {
    for (const listener of listeners) addresses.push(await listener.listen());
  } catch (error) {
    await Promise.all(listeners.map((listener) => listener.close()));
    throw error;
  }
  const purge = quarantine === undefined ? undefined : startQuarantinePurge(quarantine, durationMs(policy.quarantine.keep_for) ?? 0, logger);
  const alerts = createAlerts(policy, tlsSetup.upstreamRoots, logger);
  if (alerts !== undefined) for (const listener of listeners) listener.on('flagged', (message) => alerts.report(message));
  return {
    listeners,
    addresses,
    close: async () => {
      if (purge !== undefined) clearInterval(purge);
      await Promise.all(listeners.map((listener) => listener.close()));
      await alerts?.flush();
    },
  };
}

/** The alert notifier, when alerts.to names someone or parties are to be notified. */
function createAlerts(policy: Readonly<Policy>, roots: readonly string[], logger: Logger): AlertNotifier | undefined {
  const { alerts } = policy;
  if (alerts.to.length === 0 && !alerts.notify_recipients && !alerts.notify_sender) return undefined;
  const upstream = submissionUpstream(policy, alerts.via);
  if (upstream === undefined) throw new Error('alerts need an SMTP server to submit to: set alerts.via, or add an SMTP listener with a fixed upstream');
  const from = alerts.from === '' ? `mailmoat@${hostname()}` : alerts.from;
  return new AlertNotifier(
    { to: alerts.to, from, batchSeconds: alerts.batch_seconds, maxPerHour: alerts.max_per_hour, notifyRecipients: alerts.notify_recipients, notifySender: alerts.notify_sender },
    { upstream, roots, heloName: hostname() },
    logger,
  );
}

/** Applies quarantine.keep_for now and every hour. */
function startQuarantinePurge(store: QuarantineStore, keepForMs: number, logger: Logger): NodeJS.Timeout {
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
