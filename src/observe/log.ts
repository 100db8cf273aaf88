/**
 * Structured JSON logs (pino) to stdout: one child logger per session, one
 * summary line per SMTP transaction and one per POP3 retrieval (RETR, TOP). Credentials never reach a log: AUTH
 * arguments and SASL exchanges are not passed to the logger at all, and censoring the
 * secret keys below (in a line's fields and one level down) is a second guard for fields
 * that might carry them.
 */
import { pino, type DestinationStream, type LogFn, type Logger } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line, in a line's fields or in an object one level down. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(['password', 'auth', 'sasl']);
const CENSORED = '[redacted]';

const hasSecret = (fields: object): boolean => {
  for (const key of Object.keys(fields)) if (SECRET_KEYS.has(key)) return true;
  return false;
};

/** A copy of `value` with its secret keys censored (an Error stays an Error: pino's serializer reads it). */
function censoredCopy(value: object): object {
  const copy = (value instanceof Error ? Object.assign(Object.create(Object.getPrototypeOf(value) as object) as Error, { message: value.message, stack: value.stack }) : {}) as Record<string, unknown>;
  for (const [key, inner] of Object.entries(value)) copy[key] = SECRET_KEYS.has(key) ? CENSORED : inner;
  return copy;
}

/**
 * The second guard (pino's formatters.log): the caller's object is copied only when it holds a
 * secret key, never changed. A plain loop over the line's keys: pino's wildcard redaction paths
 * cost about as much as the rest of the line together.
 */
export function censorSecrets(fields: Record<string, unknown>): Record<string, unknown> {
  let censored: Record<string, unknown> | undefined;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    const replacement = SECRET_KEYS.has(key) ? CENSORED : typeof value === 'object' && value !== null && !Array.isArray(value) && hasSecret(value) ? censoredCopy(value) : undefined;
    if (replacement === undefined) continue;
    censored ??= { ...fields };
    censored[key] = replacement;
  }
  return censored ?? fields;
}

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
  const options = { level, base: { service: 'mailmoat' }, formatters: { log: censorSecrets }, hooks: { logMethod: uniqueKeys } };
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
