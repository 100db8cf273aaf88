/**
 * Prometheus metrics (prom-client, a registry of our own: several proxies may run in
 * one process) and the recent history the status page shows: the last verdicts and
 * messages per minute by verdict over the last hour. Fed by the listeners' events
 * (transaction, retrieval, flagged, passthrough, limit, session); labels are bounded
 * (protocol, direction, verdict, finding kind, TLS mode, limit name), never addresses.
 *
 * Process metrics (CPU, memory, event loop, handles: prom-client's defaults, named
 * mailmoat_process_* and mailmoat_nodejs_*) cover every process: this one's and those that
 * cluster workers report (processMetrics), each with a `process` label (main, supervisor,
 * worker-N). The exposition passes `promtool check metrics`.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RetrievalSummary, TransactionSummary } from './log.js';
import type { FlaggedMessage } from '../quarantine/store.js';

/** Verdicts kept for the status page. */
const RECENT_VERDICTS = 50;
/** Minutes of per-minute counts kept for the chart. */
const HISTORY_MINUTES = 60;
const MINUTE_MS = 60_000;

export const VERDICTS = ['pass', 'rewrite', 'tempfail', 'reject', 'refused', 'aborted'] as const;
type VerdictName = (typeof VERDICTS)[number];

export interface RecentVerdict {
  time: string;
  protocol: 'smtp' | 'pop3';
  verdict: VerdictName;
  size: number;
  reason: string;
  quarantine: string;
}

export interface StatusSnapshot {
  startedAt: string;
  sessions: { smtp: number; pop3: number };
  verdicts: Record<VerdictName, number>;
  findings: Record<string, number>;
  tls: Record<string, number>;
  limits: Record<string, number>;
  bytes: number;
  recent: RecentVerdict[];
  /** One entry per minute, oldest first: the minute's start and its counts by verdict. */
  perMinute: { minute: string; counts: Record<VerdictName, number> }[];
}

const zeroVerdicts = (): Record<VerdictName, number> => ({ pass: 0, rewrite: 0, tempfail: 0, reject: 0, refused: 0, aborted: 0 });

/** One process's runtime metrics, as prom-client's JSON (a worker sends these to the supervisor). */
export type ProcessMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The runtime metrics of the process that calls this: a registry of its own (several proxies may run in one process). */
export function processMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mailmoat_' });
  // prom-client's nodejs_active_{handles,requests,resources}_total are gauges, which promtool rejects
  // ("_total" is for counters); the per-type gauges without the suffix carry the same counts.
  for (const metric of registry.getMetricsAsArray()) {
    if (metric instanceof Gauge && metric.name.endsWith('_total')) registry.removeSingleMetric(metric.name);
  }
  return registry;
}

/** What the admin listener serves on /metrics. */
export interface Exposition {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export class Metrics {
  private readonly app = new Registry();
  private readonly self = processMetricsRegistry();
  private readonly processes = new Map<string, ProcessMetrics>();
  readonly registry: Exposition = { contentType: this.app.contentType, metrics: () => this.exposition() };
  private readonly sessions: Counter<'protocol'>;
  private readonly messages: Counter<'protocol' | 'direction' | 'verdict'>;
  private readonly findings: Counter<'kind'>;
  private readonly bytes: Counter<'protocol'>;
  private readonly durations: Histogram<'protocol'>;
  private readonly tls: Counter<'mode'>;
  private readonly limits: Counter<'limit'>;
  private readonly scannersUp: Gauge<'address'>;
  private readonly stateUp: Gauge;
  private readonly startedAt: Date;
  private readonly totals = { sessions: { smtp: 0, pop3: 0 }, verdicts: zeroVerdicts(), findings: {} as Record<string, number>, tls: {} as Record<string, number>, limits: {} as Record<string, number>, bytes: 0 };
  /** The recent verdicts, oldest first, with their time as epoch ms (formatted when the status page asks). */
  private readonly recent: (Omit<RecentVerdict, 'time'> & { at: number })[] = [];
  private readonly minutes = new Map<number, Record<VerdictName, number>>();
  /** The newest minute counted: older minutes are pruned when a new one starts, not at every message. */
  private newestMinute = 0;

  /** `processName`: this process's `process` label (main, or supervisor in a cluster). */
  constructor(
    private readonly processName = 'main',
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = new Date(now());
    const registers = [this.app];
    this.sessions = new Counter({ name: 'mailmoat_sessions_total', help: 'Sessions started, by protocol', labelNames: ['protocol'], registers });
    this.messages = new Counter({ name: 'mailmoat_messages_total', help: 'SMTP transactions and POP3 retrievals, by verdict', labelNames: ['protocol', 'direction', 'verdict'], registers });
    this.findings = new Counter({ name: 'mailmoat_findings_total', help: 'Findings in rewritten or refused messages, by kind', labelNames: ['kind'], registers });
    this.bytes = new Counter({ name: 'mailmoat_message_bytes_total', help: 'Message bytes captured', labelNames: ['protocol'], registers });
    this.durations = new Histogram({
      name: 'mailmoat_message_duration_seconds',
      help: 'From the end of data (SMTP) or the RETR (POP3) to the answer: inspection, antivirus scans and forwarding',
      labelNames: ['protocol'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.tls = new Counter({ name: 'mailmoat_tls_sessions_total', help: 'Sessions by TLS mode (intercepted, implicit, passthrough)', labelNames: ['mode'], registers });
    this.limits = new Counter({ name: 'mailmoat_limits_hit_total', help: 'Connections refused by a limit, by its policy key', labelNames: ['limit'], registers });
    this.scannersUp = new Gauge({ name: 'mailmoat_scanner_up', help: '1 when the clamd at this address answers PING', labelNames: ['address'], registers });
    this.stateUp = new Gauge({ name: 'mailmoat_state_backend_up', help: '1 when the shared state backend (state.backend: redis://) answers; 0 = per-node fallback', registers });
  }

  /** Brings in events still on their way (a cluster's workers hold theirs back); awaited before every read. */
  private collect: () => Promise<void> = () => Promise.resolve();

  /** Sets what brings in the events still on their way before /metrics or the status snapshot is read. */
  collectWith(collect: () => Promise<void>): void {
    this.collect = collect;
  }

  /** The status snapshot once the events on their way are in. */
  async currentSnapshot(): Promise<StatusSnapshot> {
    await this.collect();
    return this.snapshot();
  }

  /** A worker's latest process metrics; undefined once it has exited. */
  processMetrics(name: string, metrics: ProcessMetrics | undefined): void {
    if (metrics === undefined) this.processes.delete(name);
    else this.processes.set(name, metrics);
  }

  private async exposition(): Promise<string> {
    await this.collect();
    const all: [string, ProcessMetrics][] = [[this.processName, await this.self.getMetricsAsJSON()], ...this.processes];
    const labelled = all.map(([process, metrics]) => metrics.map((metric) => ({ ...metric, values: metric.values.map((value) => ({ ...value, labels: { ...value.labels, process } })) })));
    return Registry.merge([this.app, AggregatorRegistry.aggregate(labelled)]).metrics();
  }

  session(protocol: 'smtp' | 'pop3'): void {
    this.sessions.inc({ protocol });
    this.totals.sessions[protocol]++;
  }

  /** `at`: when it ended (epoch ms; a cluster worker's events reach the supervisor in batches, later). */
  transaction(summary: TransactionSummary, at = this.now()): void {
    this.message('smtp', summary.direction, summary.verdict, summary.size, summary.durationMs, summary.reason, summary.quarantine, at);
    if (summary.tls !== 'none') this.tlsSession(summary.tls);
  }

  retrieval(summary: RetrievalSummary, at = this.now()): void {
    this.message('pop3', 'inbound', summary.verdict, summary.size, summary.durationMs, summary.reason, summary.quarantine, at);
    if (summary.tls !== 'none') this.tlsSession(summary.tls);
  }

  flagged(message: FlaggedMessage): void {
    for (const finding of message.findings) {
      this.findings.inc({ kind: finding.kind });
      this.totals.findings[finding.kind] = (this.totals.findings[finding.kind] ?? 0) + 1;
    }
  }

  tlsSession(mode: 'intercepted' | 'implicit' | 'passthrough'): void {
    this.tls.inc({ mode });
    this.totals.tls[mode] = (this.totals.tls[mode] ?? 0) + 1;
  }

  limitHit(limit: string): void {
    this.limits.inc({ limit });
    this.totals.limits[limit] = (this.totals.limits[limit] ?? 0) + 1;
  }

  scannerUp(address: string, up: boolean): void {
    this.scannersUp.set({ address }, up ? 1 : 0);
  }

  stateBackendUp(up: boolean): void {
    this.stateUp.set(up ? 1 : 0);
  }

  /** Live counters, the recent verdicts and the last hour per minute, for the status page. */
  snapshot(): StatusSnapshot {
    const currentMinute = Math.floor(this.now() / MINUTE_MS);
    const perMinute = [];
    for (let minute = currentMinute - HISTORY_MINUTES + 1; minute <= currentMinute; minute++) {
      perMinute.push({ minute: new Date(minute * MINUTE_MS).toISOString(), counts: { ...(this.minutes.get(minute) ?? zeroVerdicts()) } });
    }
    return {
      startedAt: this.startedAt.toISOString(),
      sessions: { ...this.totals.sessions },
      verdicts: { ...this.totals.verdicts },
      findings: { ...this.totals.findings },
      tls: { ...this.totals.tls },
      limits: { ...this.totals.limits },
      bytes: this.totals.bytes,
      recent: this.recent.map(({ at, ...entry }) => ({ time: new Date(at).toISOString(), ...entry })).reverse(),
      perMinute,
    };
  }

  private message(protocol: 'smtp' | 'pop3', direction: 'inbound' | 'outbound', verdict: VerdictName, size: number, durationMs: number, reason: string | undefined, quarantine: string | undefined, at: number): void {
    this.messages.inc({ protocol, direction, verdict });
    this.bytes.inc({ protocol }, size);
    this.durations.observe({ protocol }, durationMs / 1000);
    this.totals.verdicts[verdict]++;
    this.totals.bytes += size;
    // In the order they happened: batches from several workers arrive in any order.
    const entry = { at, protocol, verdict, size, reason: reason ?? '', quarantine: quarantine ?? '' };
    let position = this.recent.length;
    while (position > 0 && (this.recent[position - 1]?.at ?? 0) > at) position--;
    if (position === this.recent.length) this.recent.push(entry);
    else this.recent.splice(position, 0, entry);
    if (this.recent.length > RECENT_VERDICTS) this.recent.shift();
    const minute = Math.floor(at / MINUTE_MS);
    let counts = this.minutes.get(minute);
    if (counts === undefined) {
      counts = zeroVerdicts();
      this.minutes.set(minute, counts);
    }
    counts[verdict]++;
    if (minute <= this.newestMinute) return;
    this.newestMinute = minute;
    for (const old of this.minutes.keys()) if (old <= minute - HISTORY_MINUTES) this.minutes.delete(old);
  }
}

/** What a proxy reports about its sessions; a cluster worker sends these to the supervisor. */
export type ProxyEvent =
  | { type: 'session'; protocol: 'smtp' | 'pop3' }
  /** `at`: when the payload ended, epoch ms. */
  | { type: 'transaction'; summary: TransactionSummary; at: number }
  | { type: 'retrieval'; summary: RetrievalSummary; at: number }
  | { type: 'flagged'; message: FlaggedMessage }
  | { type: 'passthrough' }
  | { type: 'limit'; limit: string }
  | { type: 'state'; up: boolean };

export function recordEvent(metrics: Metrics, event: ProxyEvent): void {
  switch (event.type) {
    case 'session':
      return metrics.session(event.protocol);
    case 'transaction':
      return metrics.transaction(event.summary, event.at);
    case 'retrieval':
      return metrics.retrieval(event.summary, event.at);
    case 'flagged':
      return metrics.flagged(event.message);
    case 'passthrough':
      return metrics.tlsSession('passthrough');
    case 'limit':
      return metrics.limitHit(event.limit);
    case 'state':
      return metrics.stateBackendUp(event.up);
  }
}
