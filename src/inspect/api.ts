/**
 * The Inspector interface: the only inspect/ module a protocol session imports.
 *
 * A session hands over the captured message (unstuffed, canonical CRLF) and what
 * it knows of the transaction; the inspector answers with a verdict. Verdicts are
 * exhaustive; a session maps each one to a protocol reply and never passes a
 * message on when inspection threw.
 */
export type Direction = 'inbound' | 'outbound';

export interface MessageSource {
  size: number;
  /** The message bytes from the start; each call reads them anew. */
  open(): AsyncIterable<Buffer>;
}

export interface InspectionContext {
  sessionId: string;
  direction: Direction;
  sender: string;
  recipients: readonly string[];
  /**
   * The message may be cut short (a POP3 TOP response): a part that cannot be read
   * because it is cut is stripped, never given the unscannable policy's tempfail or reject.
   */
  partial?: boolean;
  /** The SMTP client's address and HELO name, when known (SPF and DMARC of a rewritten message, src/auth). */
  client?: { address: string; helo: string };
}

/** What was found in one part (the quarantine record and the alerts carry these). */
export interface FindingSummary {
  part: string;
  filename: string;
  kind: string;
  reason: string;
}

export type Verdict =
  /**
   * Forward the original, or `message` when set: the original with header fields added on top and
   * nothing else changed (auth.results_on_every_message). Still a clean message in logs and metrics;
   * the session disposes `message`.
   */
  | { action: 'pass'; message?: MessageSource & { dispose(): Promise<void> } }
  /** Forward `message` instead of the original (only parts with findings differ); the session disposes it. */
  | { action: 'rewrite'; message: MessageSource & { dispose(): Promise<void> }; summary: string; findings: readonly FindingSummary[] }
  | { action: 'tempfail'; reason: string; findings?: readonly FindingSummary[] }
  | { action: 'reject'; reason: string; findings?: readonly FindingSummary[] };

export interface Inspector {
  inspect(message: MessageSource, context: InspectionContext): Promise<Verdict>;
}
