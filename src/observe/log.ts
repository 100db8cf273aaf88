/**
 * Structured JSON logs (pino) to stdout: one child logger per session, one
 * summary line per SMTP transaction and one per POP3 retrieval (RETR, TOP). Credentials never reach a log: AUTH
 * arguments and SASL exchanges are not passed to the logger at all, and the
 * redaction paths below are a second guard for fields that might carry them.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACTED_PATHS = ['password', 'auth', '*.password', '*.auth', 'sasl', '*.sasl'];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'mailmoat' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}

export interface TransactionSummary {
  session: string;
  downstream: string;
  upstream: string;
  direction: 'inbound' | 'outbound';
  /** TLS on the downstream leg: none, implicit (port 465), or intercepted STARTTLS. */
  tls: 'none' | 'implicit' | 'intercepted';
  inspected: boolean;
  helo: string;
  sender: string;
  recipients: number;
  size: number;
  verdict: 'pass' | 'rewrite' | 'tempfail' | 'reject' | 'refused' | 'aborted';
  reason?: string;
  /** The quarantine entry holding the original (rewritten, tempfailed or rejected messages). */
  quarantine?: string;
  upstreamReply: string;
  durationMs: number;
}

export interface RetrievalSummary {
  session: string;
  downstream: string;
  upstream: string;
  user: string;
  /** TLS on the downstream leg: none, implicit (port 995), or intercepted STLS. */
  tls: 'none' | 'implicit' | 'intercepted';
  command: string;
  /** The message number the client asked for. */
  message: string;
  inspected: boolean;
  size: number;
  verdict: 'pass' | 'rewrite' | 'tempfail' | 'reject' | 'refused' | 'aborted';
  reason?: string;
  /** The quarantine entry holding the original (rewritten or refused retrievals). */
  quarantine?: string;
  /** Whether the keepalive committed the response before the verdict (pop3.keepalive_seconds). */
  keptAlive: boolean;
  durationMs: number;
}
