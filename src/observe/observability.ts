/**
 * Metrics, health and the status page for one running mailmoat: the Metrics that the
 * proxy's events feed, a PING of every configured clamd every 30 s (scanner up/down),
 * and the admin listener (`admin.listen`). A failing admin listener is logged, never a
 * reason to stop mail. In a cluster it runs once, in the supervisor, fed by the workers.
 */
import type { Policy } from '../config/schema.js';
import { parseHostPort } from '../config/schema.js';
import { ClamdClient, describeClamdAddress, parseClamdAddress, type ClamdAddress } from '../inspect/clamd.js';
import type { Logger } from './log.js';
import { Metrics, recordEvent, type ProxyEvent } from './metrics.js';
import { startAdminServer, type AdminServer } from './admin.js';

/** How often each clamd is asked for PONG. */
const SCANNER_CHECK_MS = 30_000;
const SCANNER_TIMEOUT_MS = 5000;

export interface Observability {
  metrics: Metrics;
  record(event: ProxyEvent): void;
  close(): Promise<void>;
}

export async function startObservability(policy: Readonly<Policy>, logger: Logger, managedClamd?: ClamdAddress): Promise<Observability> {
  const metrics = new Metrics();
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
  let admin: AdminServer | undefined;
  const listen = policy.admin.listen === '' ? undefined : parseHostPort(policy.admin.listen);
  if (listen !== undefined) {
    try {
      admin = await startAdminServer(listen, metrics, async () => {
        const scannerStates = Object.fromEntries(scanners);
        const ok = addresses.length === 0 || [...scanners.values()].some(Boolean);
        return { ok, detail: { scanners: scannerStates } };
      }, policy.admin.allowed_hosts);
      logger.info({ admin: `${admin.address.address}:${admin.address.port}` }, 'admin listener: /metrics, /healthz, status page on /');
    } catch (error) {
      logger.error({ admin: policy.admin.listen, reason: (error as Error).message }, 'admin listener could not start: mail flows on without it');
    }
  }
  return {
    metrics,
    record: (event) => recordEvent(metrics, event),
    close: async () => {
      clearInterval(timer);
      await admin?.close();
    },
  };
}
