/**
 * Metrics, health and the status page for one running mailmoat: the Metrics that the
 * proxy's events feed, a PING of every configured clamd every 30 s and at each /healthz
 * request (scanner up/down), and the admin listener (`admin.listen`). A failing admin
 * listener is logged, never a reason to stop mail. In a cluster it runs once, in the supervisor, fed by the workers.
 *
 * /healthz is ready (200) when the listeners are up (every worker listens, no drain),
 * at least one configured clamd answers PING, and a file can be created in the spool
 * folder; otherwise 503 with the reasons. `mailmoat health` asks it.
 */
import type { Policy } from '../config/schema.js';
import { parseHostPort } from '../config/schema.js';
import { ClamdClient, describeClamdAddress, parseClamdAddress, type ClamdAddress } from '../inspect/clamd.js';
import type { Logger } from './log.js';
import { Metrics, recordEvent, type ProxyEvent } from './metrics.js';
import { startAdminServer, type AdminServer } from './admin.js';
import { randomBytes } from 'node:crypto';
import { QuarantineStore } from '../quarantine/store.js';
import { readAdminToken } from '../state/admin-token.js';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How often each clamd is asked for PONG. */
const SCANNER_CHECK_MS = 30_000;
const SCANNER_TIMEOUT_MS = 5000;

/** What the serving side reports about its listeners. */
export interface ListenerHealth {
  ok: boolean;
  detail: string;
}

export interface Observability {
  metrics: Metrics;
  record(event: ProxyEvent): void;
  /** How /healthz learns whether the listeners are up (until this is called: "starting"). */
  watchListeners(state: () => ListenerHealth): void;
  close(): Promise<void>;
}

export interface ObservabilityOptions {
  /** antivirus.clamd: managed in a cluster: the supervisor's clamd. */
  managedClamd?: ClamdAddress;
  /** This process's `process` label on the process metrics (default main). */
  processName?: string;
}

export async function startObservability(policy: Readonly<Policy>, logger: Logger, options: ObservabilityOptions = {}): Promise<Observability> {
  const { managedClamd } = options;
  const metrics = new Metrics(options.processName);
  const setting = policy.antivirus.clamd;
  const addresses =
    setting === 'managed' ? (managedClamd === undefined ? [] : [managedClamd]) : (Array.isArray(setting) ? setting : [setting]).flatMap((text) => parseClamdAddress(text) ?? []);
  const scanners = new Map<string, boolean>();
  const check = async (): Promise<void> => {
    await Promise.all(
      addresses.map(async (address) => {
        const name = describeClamdAddress(address);
        const up = await new ClamdClient(address, SCANNER_TIMEOUT_MS).ping().catch(() => false);
        scanners.set(name, up);
        metrics.scannerUp(name, up);
      }),
    );
  };
  await check();
  const timer = setInterval(() => void check(), SCANNER_CHECK_MS);
  timer.unref();
  let listeners = (): ListenerHealth => ({ ok: false, detail: 'starting' });
  const spoolDir = policy.spool.dir || tmpdir();
  let admin: AdminServer | undefined;
  const listen = policy.admin.listen === '' ? undefined : parseHostPort(policy.admin.listen);
  // A fleet's nodes fetch this node's quarantined originals here (state.admin_token_file).
  const token = policy.state.backend === 'local' || !policy.quarantine.enabled ? undefined : readAdminToken(policy.state.admin_token_file);
  const quarantine = token === undefined ? undefined : { store: new QuarantineStore(policy.quarantine.dir), token };
  if (listen !== undefined) {
    try {
      admin = await startAdminServer(listen, metrics, async () => {
        const listenerState = listeners();
        // A probe gets the scanners' state now, not up to SCANNER_CHECK_MS old.
        await check();
        const scannersOk = addresses.length === 0 || [...scanners.values()].some(Boolean);
        const spool = await spoolWritable(spoolDir);
        const ok = listenerState.ok && scannersOk && spool.ok;
        return { ok, detail: { listeners: listenerState.detail, scanners: Object.fromEntries(scanners), spool: spool.detail } };
      }, policy.admin.allowed_hosts, quarantine);
      logger.info({ admin: `${admin.address.address}:${admin.address.port}` }, 'admin listener: /metrics, /healthz, status page on /');
    } catch (error) {
      logger.error({ admin: policy.admin.listen, reason: (error as Error).message }, 'admin listener could not start: mail flows on without it');
    }
  }
  return {
    metrics,
    record: (event) => recordEvent(metrics, event),
    watchListeners: (state) => {
      listeners = state;
    },
    close: async () => {
      clearInterval(timer);
      await admin?.close();
    },
  };
}

/** Whether a spool file can be created (mode 0600, as the spool does) in `dir`; the probe file is removed. */
async function spoolWritable(dir: string): Promise<{ ok: boolean; detail: string }> {
  const path = join(dir, `.mailmoat-health-${randomBytes(6).toString('hex')}`);
  try {
    const handle = await open(path, 'wx', 0o600);
    await handle.close();
    await rm(path);
    return { ok: true, detail: `${dir} writable` };
  } catch (error) {
    return { ok: false, detail: `${dir}: ${(error as Error).message}` };
  }
}
