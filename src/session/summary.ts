/**
 * The one summary line per payload (an SMTP transaction, a POP3 retrieval), built in one
 * place for both dialects: who (session, legs, TLS), what the dialect adds (the envelope,
 * the command), and how it ended (size, verdict, reason, quarantine entry, duration).
 * The log keys are the public ones of observe/log.ts (TransactionSummary, RetrievalSummary).
 */
import { performance } from 'node:perf_hooks';
import type { TransactionSummary } from '../observe/log.js';

/** What a session says about itself in every summary. */
export interface SummaryLegs {
  session: string;
  downstream: string;
  upstream: string;
  tls: TransactionSummary['tls'];
  inspected: boolean;
}

/** How one payload ended. */
export interface PayloadResult {
  size: number;
  verdict: TransactionSummary['verdict'];
  reason?: string | undefined;
  quarantine?: string | undefined;
  /** performance.now() when the payload started (DATA accepted, RETR sent). */
  startedAt: number;
}

export type PayloadSummary<Detail extends object> = SummaryLegs &
  Detail & { size: number; verdict: TransactionSummary['verdict']; reason?: string; quarantine?: string; durationMs: number };

export function summarize<Detail extends object>(legs: SummaryLegs, detail: Detail, result: PayloadResult): PayloadSummary<Detail> {
  // Built key by key, in the order the log line shows them: spreading objects of many shapes cost more than the rest of the line.
  const summary = Object.assign({ session: legs.session, downstream: legs.downstream, upstream: legs.upstream, tls: legs.tls, inspected: legs.inspected }, detail) as PayloadSummary<Detail>;
  summary.size = result.size;
  summary.verdict = result.verdict;
  if (result.reason !== undefined) summary.reason = result.reason;
  if (result.quarantine !== undefined) summary.quarantine = result.quarantine;
  summary.durationMs = Math.round(performance.now() - result.startedAt);
  return summary;
}
