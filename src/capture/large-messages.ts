/**
 * Large Message Safety (Mailtraq): a message that grows past
 * `limits.large_message.abort_over` is cut off at once, and what identifies that
 * same oversized message is remembered for `remember_for`: the client's network
 * (its IPv4 address, or its IPv6 /64), the HELO, MAIL FROM and RCPT TO arguments,
 * and the size the sender declared (MAIL FROM SIZE=, RFC 1870). Offered again, it
 * is refused permanently at DATA (552 5.3.4) instead of being read, megabyte after
 * megabyte, on every retry.
 *
 * Only a transaction that declares a SIZE= over abort_over is ever refused, so no
 * message under the limit is: a forged triple cannot make an ordinary message fail,
 * and a key is remembered only for a cut transaction that declared such a size (one
 * without SIZE= cannot be recognised before it is read again).
 *
 * The keys live in a small JSON file (SHA-256 of the key, and when it expires),
 * written atomically (temporary file, rename), so they survive a restart; other
 * processes (cluster workers) see a change at their next lookup, which re-reads the
 * file when its modification time moved.
 *
 * In a fleet (`state.backend: redis://…`, state/large-messages.ts) a remembered key
 * is also stored in Redis with its TTL, and the keys other nodes remember are
 * mirrored here in memory: a retry that lands on another node is refused there too.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { clientNetwork } from '../policy/client-network.js';
import type { SharedLargeMessages } from '../state/large-messages.js';

/** Remembered keys kept at most; the ones expiring first go. */
const MAX_REMEMBERED_KEYS = 100_000;

export interface TransactionKey {
  /** The downstream's address (after a PROXY header); remembered as its network. */
  client: string;
  helo: string;
  sender: string;
  recipients: readonly string[];
  /** MAIL FROM SIZE=, when the sender declared it. */
  declaredSize: number | undefined;
}

export function keyOf(transaction: TransactionKey): string {
  const text = [
    clientNetwork(transaction.client),
    String(transaction.declaredSize ?? ''),
    transaction.helo.toLowerCase(),
    transaction.sender.toLowerCase(),
    ...[...transaction.recipients].map((recipient) => recipient.toLowerCase()).sort(),
  ].join('\n');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Whether a transaction can be recognised before its data: it declared a size over the limit. */
export const recognisable = (transaction: TransactionKey, abortOverBytes: number): boolean => transaction.declaredSize !== undefined && transaction.declaredSize > abortOverBytes;

export class LargeMessageMemory {
  private keys = new Map<string, number>();
  /** Keys other nodes of the fleet remembered (key, until when). */
  private readonly fleetKeys = new Map<string, number>();
  private seenMtimeMs = -1;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly rememberForMs: number,
    private readonly now: () => number = Date.now,
    private readonly fleet: SharedLargeMessages | undefined = undefined,
  ) {
    this.refresh();
    fleet?.mirror((key, until) => {
      if (this.fleetKeys.size >= MAX_REMEMBERED_KEYS) this.forgetExpiredFleetKeys();
      if (this.fleetKeys.size < MAX_REMEMBERED_KEYS) this.fleetKeys.set(key, until);
    });
  }

  /** Whether this transaction was cut off before and is still remembered (ask only when it is recognisable()). */
  has(transaction: TransactionKey): boolean {
    this.refresh();
    const key = keyOf(transaction);
    const until = Math.max(this.keys.get(key) ?? 0, this.fleetKeys.get(key) ?? 0);
    return until > this.now();
  }

  /** Remembers a transaction that was cut off; resolves once the file is written (and the fleet told, when there is one). */
  remember(transaction: TransactionKey): Promise<void> {
    this.refresh();
    const now = this.now();
    for (const [key, until] of this.keys) if (until <= now) this.keys.delete(key);
    const remembered = keyOf(transaction);
    this.keys.set(remembered, now + this.rememberForMs);
    if (this.keys.size > MAX_REMEMBERED_KEYS) {
      const sorted = [...this.keys].sort((a, b) => a[1] - b[1]);
      this.keys = new Map(sorted.slice(sorted.length - MAX_REMEMBERED_KEYS));
    }
    const snapshot = JSON.stringify(Object.fromEntries(this.keys));
    this.writing = this.writing.then(() => this.write(snapshot));
    // Redis down: the node's own file still refuses the retry here (README "Fleet").
    const shared = this.fleet?.remember(remembered, this.rememberForMs).catch(() => undefined);
    return Promise.all([this.writing, shared]).then(() => undefined);
  }

  private forgetExpiredFleetKeys(): void {
    const now = this.now();
    for (const [key, until] of this.fleetKeys) if (until <= now) this.fleetKeys.delete(key);
  }

  private async write(text: string): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.tmp-${process.pid}`;
    await writeFile(temporary, text, { mode: 0o600 });
    await rename(temporary, this.file);
    this.seenMtimeMs = statSync(this.file).mtimeMs;
  }

  /** Re-reads the file when another process (or a previous run) changed it. */
  private refresh(): void {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.file).mtimeMs;
    } catch {
      return;
    }
    if (mtimeMs === this.seenMtimeMs) return;
    this.seenMtimeMs = mtimeMs;
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, unknown>;
      const keys = new Map<string, number>();
      for (const [key, until] of Object.entries(parsed)) if (/^[0-9a-f]{64}$/.test(key) && typeof until === 'number') keys.set(key, until);
      this.keys = keys;
    } catch {
      // A damaged file forgets its keys rather than stopping mail; the next write replaces it.
      this.keys = new Map();
    }
  }
}
