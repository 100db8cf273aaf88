/**
 * Structured JSON logs (pino) to stdout: one child logger per session, one
 * summary line per SMTP transaction and one per POP3 retrieval (RETR, TOP). Credentials never reach a log: AUTH
 * arguments and SASL exchanges are not passed to the logger at all, and the
 * redaction paths below are a second guard for fields that might carry them.
 */
import { pino, type DestinationStream, type LogFn, type Logger } from 'pino';

export type { Logger };

export const REDACTED_PATHS = ['password', 'auth', '*.password', '*.auth', 'sasl', '*.sasl'];

/** The keys each (child) logger binds, read once per logger: its bindings do not change. */
const boundKeys = new WeakMap<Logger, Record<string, unknown>>();

/**
 * Every line is JSON with unique keys (Elasticsearch, Fluent Bit and strict parsers reject
 * duplicates): pino writes a child's bindings and the call's object side by side, so a key
 * in both (a session's `session` and its transaction summary's) would appear twice. Such a
 * key is dropped from the call's object when the value is the same, or kept as
 * `logged_<key>` when it differs.
 */
function uniqueKeys(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  const [first, ...rest] = args;
  if (typeof first !== 'object' || first === null || first instanceof Error) return method.apply(this, args);
  let bound = boundKeys.get(this);
  if (bound === undefined) {
    bound = this.bindings();
    boundKeys.set(this, bound);
  }
  const fields = first as Record<string, unknown>;
  if (!Object.keys(fields).some((key) => Object.hasOwn(bound, key))) return method.apply(this, args);
  const unique: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (!Object.hasOwn(bound, key)) unique[key] = value;
    else if (bound[key] !== value) unique[`logged_${key}`] = value;
  }
  return method.apply(this, [unique, ...rest] as Parameters<LogFn>);
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'mailmoat' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, hooks: { logMethod: uniqueKeys } };
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
  /** The client attributes a trusted peer forwarded (XFORWARD: addr, name, helo, ident...). */
  xforward?: Record<string, string>;
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
