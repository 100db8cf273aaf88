/**
 * How an SMTP session ends: the ways a caller can name, and what each leg gets then.
 *
 * RFC 5321 3.8 (a server that must close sends 421 first), 4.1.1.10 (QUIT: the receiver
 * answers 221, then closes). The upstream is told QUIT once, and only while it waits for
 * a command: once DATA was sent (or the RSET after a refusal is outstanding) a QUIT would
 * be read as message text or pile on an unanswered command, and after a QUIT already
 * relayed a FIN is all that is left to say. Otherwise the upstream gets a FIN when the
 * session ends politely, and is destroyed when not (closing it before a final dot
 * delivers nothing).
 */
import type { Reply } from '../../errors.js';

export type Closing =
  /** Nothing more to say (QUIT answered, a half-closed idle downstream): FIN. */
  | { how: 'polite' }
  /** A last reply (421 and the like) now, ahead of any reply owed; the transaction in progress is dropped. */
  | { how: 'reply-now'; last: Reply }
  /** A last reply in its turn, behind the replies owed to earlier pipelined commands; then as reply-now. */
  | { how: 'reply-in-turn'; last: Reply }
  /** No word: the downstream is gone or cannot be answered (mid-DATA, a failed TLS handshake). */
  | { how: 'silent' };

export type CloseHow = Closing['how'];

export interface UpstreamLeg {
  /** Connected, and not lost or given up. */
  alive: boolean;
  /** The downstream's QUIT was relayed. */
  quitSent: boolean;
  /** DATA was sent, or the RSET after a refusal awaits its reply. */
  inTransfer: boolean;
}

export type UpstreamEnd = 'quit' | 'fin' | 'destroy';

/** The one place that decides how the upstream leg ends. */
export function upstreamEnd(how: CloseHow, leg: UpstreamLeg): UpstreamEnd {
  if (leg.alive && !leg.inTransfer) return leg.quitSent ? 'fin' : 'quit';
  return how === 'polite' ? 'fin' : 'destroy';
}
