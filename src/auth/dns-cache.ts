/**
 * A bounded, per-process cache of the DNS answers the authentication checks read (DKIM and ARC
 * keys, SPF, DMARC: RFC 6376 3.6.2, RFC 7208 4.4, RFC 7489 6.1), keyed by (name, rrtype); names
 * compare case-insensitively (RFC 4343). Node's resolver gives no TTL for TXT answers, so an
 * answer is kept for a fixed time (`auth.dns_cache_seconds`), as the caches of rspamd and
 * OpenDKIM cap theirs: a key rotated or an SPF record edited is seen at most that late.
 * A name or record that does not exist (NXDOMAIN, NODATA: RFC 2308) is kept for a shorter time;
 * a failure (SERVFAIL, refused, timeout) is never kept, so the next message asks again
 * (a temperror must not outlive the message it happened to). Past MAX_CACHED_ANSWERS answers or
 * MAX_CACHED_BYTES, the oldest stored go first. A TXT answer (every record mailauth reads
 * for DKIM, ARC, SPF and DMARC) is given as the same frozen object each time, so the public key
 * mailauth parses from it is kept with it (patches/mailauth: a WeakMap keyed by the answer) and
 * goes when the answer goes; other answers (A, MX: mailauth sorts an MX list in place) as copies.
 */

/** Answers kept at most; past it, the oldest stored is dropped. */
export const MAX_CACHED_ANSWERS = 10_000;
/** The answers' size together (their JSON text, in bytes); an answer larger than this is not kept. */
export const MAX_CACHED_BYTES = 4 * 1024 * 1024;
/** NXDOMAIN and NODATA are kept this long, or `auth.dns_cache_seconds` if that is shorter. */
export const NEGATIVE_ANSWER_SECONDS = 60;

/** The resolver errors that say the name or record does not exist (node:dns codes). */
const ABSENT_CODES: ReadonlySet<string> = new Set(['ENOTFOUND', 'ENODATA']);

export type CachedAnswer = { records: unknown } | { absent: string };

interface Entry {
  answer: CachedAnswer;
  expiresAtMs: number;
  bytes: number;
}

export interface DnsCacheSettings {
  /** Positive answers are kept this long; 0: nothing is kept. */
  answerSeconds: number;
  /** Milliseconds since the epoch (Date.now unless a test drives the time). */
  now?: () => number;
}

/** True when `error` says the name or record does not exist (an answer worth keeping). */
export const isAbsence = (error: unknown): error is NodeJS.ErrnoException =>
  error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && ABSENT_CODES.has((error as NodeJS.ErrnoException).code ?? '');

/** The error a lookup of an absent name gives, as node:dns gives it (mailauth reads `code`). */
export function absenceError(name: string, code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`query ${code} ${name} (cached)`), { code, hostname: name });
}

export class DnsAnswerCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly now: () => number;

  constructor(private readonly settings: DnsCacheSettings) {
    this.now = settings.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The answer stored for (name, rrtype) and not yet expired: TXT records frozen and shared, others a copy. */
  get(name: string, rrtype: string): CachedAnswer | undefined {
    const key = cacheKey(name, rrtype);
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= this.now()) {
      this.remove(key, entry);
      return undefined;
    }
    if (!('records' in entry.answer) || Object.isFrozen(entry.answer.records)) return entry.answer;
    return { records: structuredClone(entry.answer.records) };
  }

  /**
   * Keeps the records the resolver answered; gives what the caller should pass on: for TXT the
   * kept frozen object (the one later messages get, so what is parsed from it now is kept too).
   */
  storeRecords(name: string, rrtype: string, records: unknown): unknown {
    if (this.settings.answerSeconds <= 0) return records;
    const copy = structuredClone(records);
    const kept = rrtype.toUpperCase() === 'TXT' ? deepFreeze(copy) : copy;
    return this.keep(name, rrtype, { records: kept }, this.settings.answerSeconds) ? kept : records;
  }

  /** Keeps a lookup's failure only when it says the name or record does not exist. */
  storeFailure(name: string, rrtype: string, error: unknown): void {
    if (this.settings.answerSeconds <= 0 || !isAbsence(error)) return;
    this.keep(name, rrtype, { absent: error.code ?? 'ENOTFOUND' }, Math.min(this.settings.answerSeconds, NEGATIVE_ANSWER_SECONDS));
  }

  private keep(name: string, rrtype: string, answer: CachedAnswer, seconds: number): boolean {
    const key = cacheKey(name, rrtype);
    const bytes = key.length + JSON.stringify(answer).length;
    if (bytes > MAX_CACHED_BYTES) return false;
    const previous = this.entries.get(key);
    if (previous !== undefined) this.remove(key, previous);
    this.entries.set(key, { answer, expiresAtMs: this.now() + seconds * 1000, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= MAX_CACHED_ANSWERS && this.bytes <= MAX_CACHED_BYTES) break;
      this.remove(oldest, entry);
    }
    return true;
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}

function deepFreeze<T>(value: T): T {
  if (Array.isArray(value)) for (const item of value) deepFreeze(item);
  return Object.freeze(value);
}

const cacheKey = (name: string, rrtype: string): string => `${rrtype.toUpperCase()} ${name.toLowerCase().replace(/\.$/, '')}`;
