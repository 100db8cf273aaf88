/**
 * The payload step both dialects share: a captured message (SMTP DATA, POP3 RETR/TOP)
 * goes through the gate, the inspector and the quarantine, and comes out as one
 * outcome the dialect maps to its own wire reply: forward a source, refuse, tempfail.
 *
 * The gate runs in one order for every dialect, cheapest and most certain first:
 *  1. the spool is finished (a write error, a full disk included, is a tempfail);
 *  2. the peer the message is for is still there (SMTP: the upstream leg);
 *  3. size (limits.max_message_bytes: what was received, not what was declared);
 *  4. bare CR or LF line endings, when the dialect refuses them (smtp.bare_line_endings: reject);
 *  5. the header block (limits.max_mime_header_bytes, limits.max_header_lines, RFC 5322 2.2):
 *     a refusal where the dialect can refuse, a warning line on top where it cannot (POP3);
 *  6. the inspector, then the quarantine of the original of a message it flagged (and the
 *     flagged event, for alerts and metrics) before anything is forwarded or refused.
 * A message the gate stops is never inspected: the inspector only sees what could be delivered.
 *
 * Invariants: nothing is forwarded unless the inspector said pass or rewrite (or inspection is
 * off) and, for a flagged message, its original is stored; an inspector or quarantine failure
 * is a tempfail, never a pass. A rewritten source is the caller's to release after forwarding.
 */
import type { InspectionContext, Inspector, MessageSource, Verdict } from '../inspect/api.js';
import type { Policy } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Spool } from '../capture/spool.js';
import { countHeaderLines } from '../capture/header-lines.js';
import type { FlaggedMessage, NewRecord, QuarantineStore } from '../quarantine/store.js';

/** Why a message is refused for good (the sender or the administrator must act). */
export type RefusalCause = 'too-big' | 'bare-line-endings' | 'too-many-header-lines' | 'policy';
/** Why a message is refused for now (a later attempt may pass). */
export type TempfailCause = 'spool' | 'peer-lost' | 'header-too-large' | 'inspector' | 'quarantine' | 'policy';

/** A header block over a limit, on a dialect that delivers it with a warning. */
export interface HeaderWarning {
  kind: 'too-large' | 'too-many-lines';
  text: string;
}

export type PayloadOutcome =
  | {
      kind: 'forward';
      verdict: 'pass' | 'rewrite';
      /** The original spool (pass), the annotated original (pass with auth.results_on_every_message) or the rewritten message (rewrite). */
      source: MessageSource;
      /** Frees a rewritten source once it was sent (or could not be). */
      release(): Promise<void>;
      reason?: string;
      quarantine?: string;
      headerWarning?: HeaderWarning;
    }
  | { kind: 'refuse'; cause: RefusalCause; reason: string; quarantine?: string }
  | { kind: 'tempfail'; cause: TempfailCause; reason: string; quarantine?: string };

/** The summary's verdict for an outcome that was not forwarded. */
export const refusalVerdict = (outcome: Extract<PayloadOutcome, { kind: 'refuse' | 'tempfail' }>): 'refused' | 'reject' | 'tempfail' =>
  outcome.kind === 'tempfail' ? 'tempfail' : outcome.cause === 'policy' ? 'reject' : 'refused';

/** What stays the same for every payload of a session. */
export interface PayloadStep {
  policy: Readonly<Policy>;
  log: Logger;
  /** Undefined when this session's messages are not inspected. */
  inspector: Inspector | undefined;
  /** Undefined when quarantine.enabled is false (the flagged event is still emitted). */
  quarantine: QuarantineStore | undefined;
  onFlagged(message: FlaggedMessage): void;
  /** Bare CR or LF line endings refuse the message (SMTP with smtp.bare_line_endings: reject). */
  refuseBareLineEndings: boolean;
  /** Over a header limit: refused (SMTP), or delivered with a warning line (POP3 cannot refuse). */
  headerLimits: 'refuse' | 'warn';
}

/** One captured message. */
export interface Payload {
  spool: Spool;
  /** Bytes received, counted on past limits.max_message_bytes (the spool stops storing there). */
  size: number;
  bareLineEndings: number;
  context: InspectionContext;
  /** The quarantine record's fields other than the verdict's. */
  record: Omit<NewRecord, 'action' | 'reason' | 'findings'>;
  /** Whether the peer the message is for is gone (checked once the spool is finished). */
  peerLost?: () => boolean;
}

const released = (): Promise<void> => Promise.resolve();

export async function runPayloadStep(step: PayloadStep, payload: Payload): Promise<PayloadOutcome> {
  const { spool } = payload;
  const limits = step.policy.limits;
  try {
    await spool.finish();
  } catch (error) {
    step.log.error({ err: error }, 'spool write failed');
    return { kind: 'tempfail', cause: 'spool', reason: 'spool write failed' };
  }
  if (payload.peerLost?.() === true) return { kind: 'tempfail', cause: 'peer-lost', reason: 'upstream lost' };
  if (payload.size > limits.max_message_bytes) return { kind: 'refuse', cause: 'too-big', reason: 'message over max_message_bytes' };
  if (payload.bareLineEndings > 0 && step.refuseBareLineEndings) return { kind: 'refuse', cause: 'bare-line-endings', reason: 'bare CR or LF line endings' };
  const headerWarning = await checkHeader(step, spool);
  if (headerWarning !== undefined && step.headerLimits === 'refuse') {
    return headerWarning.kind === 'too-large'
      ? { kind: 'tempfail', cause: 'header-too-large', reason: headerWarning.text }
      : { kind: 'refuse', cause: 'too-many-header-lines', reason: headerWarning.text };
  }
  const warned = headerWarning === undefined ? {} : { headerWarning };
  if (step.inspector === undefined) return { kind: 'forward', verdict: 'pass', source: spool, release: released, ...warned };
  let verdict: Verdict;
  try {
    verdict = await step.inspector.inspect(spool, payload.context);
  } catch (error) {
    step.log.error({ err: error }, 'inspector failed');
    return { kind: 'tempfail', cause: 'inspector', reason: 'inspector failed' };
  }
  if (verdict.action === 'pass') {
    // A clean message the inspector annotated (auth.results_on_every_message) is still a pass.
    const annotated = verdict.message;
    if (annotated === undefined) return { kind: 'forward', verdict: 'pass', source: spool, release: released, ...warned };
    return { kind: 'forward', verdict: 'pass', source: annotated, release: () => annotated.dispose(), ...warned };
  }
  const stored = await quarantine(step, payload, verdict);
  if (stored === undefined) {
    if (verdict.action === 'rewrite') await verdict.message.dispose();
    return { kind: 'tempfail', cause: 'quarantine', reason: 'quarantine write failed' };
  }
  const kept = stored === '' ? {} : { quarantine: stored };
  switch (verdict.action) {
    case 'rewrite': {
      const message = verdict.message;
      return { kind: 'forward', verdict: 'rewrite', source: message, release: () => message.dispose(), reason: verdict.summary, ...kept, ...warned };
    }
    case 'tempfail':
      return { kind: 'tempfail', cause: 'policy', reason: verdict.reason, ...kept };
    case 'reject':
      return { kind: 'refuse', cause: 'policy', reason: verdict.reason, ...kept };
  }
}

/** The header block against its two limits; undefined when it is within both. */
async function checkHeader(step: PayloadStep, spool: Spool): Promise<HeaderWarning | undefined> {
  const { max_header_lines: maxHeaderLines, max_mime_header_bytes: maxHeaderBytes } = step.policy.limits;
  const header = await countHeaderLines(spool, maxHeaderBytes);
  if (header.kind === 'too-large') return { kind: 'too-large', text: `header block over ${maxHeaderBytes} bytes (limits.max_mime_header_bytes)` };
  if (header.lines > maxHeaderLines) return { kind: 'too-many-lines', text: `more than ${maxHeaderLines} header lines (limits.max_header_lines)` };
  return undefined;
}

/**
 * Keeps the original of a flagged message and reports it (alerts, metrics). Resolves with
 * the entry's id ('' when the quarantine is off), or undefined when it could not be stored.
 */
async function quarantine(step: PayloadStep, payload: Payload, verdict: Exclude<Verdict, { action: 'pass' }>): Promise<string | undefined> {
  const fields: NewRecord = {
    ...payload.record,
    action: verdict.action,
    reason: verdict.action === 'rewrite' ? verdict.summary : verdict.reason,
    findings: [...(verdict.findings ?? [])],
  };
  const store = step.quarantine;
  let id = '';
  if (store !== undefined) {
    try {
      id = (await store.store(payload.spool, fields)).id;
    } catch (error) {
      step.log.error({ err: error, dir: store.dir }, 'quarantine write failed: the message is tempfailed');
      return undefined;
    }
  }
  step.onFlagged({ ...fields, time: new Date().toISOString(), ...(id === '' ? {} : { quarantine: id }) });
  return id;
}
