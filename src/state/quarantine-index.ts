/**
 * One quarantine view for a fleet: each node keeps its entries' files in its own
 * `quarantine.dir`, and indexes every record in Redis (one hash field per entry: the
 * owning node, the URL of its admin listener, the record). `mailmoat quarantine
 * list|show|release` on any node reads the index, and fetches an original from its
 * owner's admin listener (GET /quarantine/ID/original, RFC 9110, with the fleet's
 * bearer token, RFC 6750) unless it is its own. A release is claimed first (SET NX),
 * so two releases of one entry from two nodes deliver it once.
 */
import type { QuarantineRecord } from '../quarantine/store.js';
import type { Logger } from '../observe/log.js';
import { KEY_PREFIX, type SharedState } from './shared-state.js';

const INDEX = `${KEY_PREFIX}quarantine`;
const RELEASED = `${KEY_PREFIX}quarantine:released:`;
/** Fetching an original from its owner may take this long. */
const FETCH_TIMEOUT_MS = 30_000;

export interface IndexedEntry {
  node: string;
  /** The owner's admin listener, http://host:port. */
  admin: string;
  record: QuarantineRecord;
}

export class QuarantineIndex {
  constructor(
    private readonly state: SharedState,
    /** This node's admin listener as the others reach it. */
    private readonly adminUrl: string,
    private readonly logger: Logger,
  ) {}

  get nodeId(): string {
    return this.state.nodeId;
  }

  async add(record: QuarantineRecord): Promise<void> {
    const entry: IndexedEntry = { node: this.state.nodeId, admin: this.adminUrl, record };
    try {
      await this.state.client.hset(INDEX, record.id, JSON.stringify(entry));
    } catch (error) {
      // Indexed again when the backend is back (reindex); the entry is safe on this node's disk.
      this.logger.warn({ id: record.id, reason: (error as Error).message }, 'quarantine entry not indexed in the state backend (kept on this node)');
    }
  }

  async remove(id: string): Promise<void> {
    await this.state.client.hdel(INDEX, id).catch(() => undefined);
  }

  /** Indexes this node's entries at each (re)connection: those stored while the backend was down join the view. Returns the stop function. */
  reindexOnConnect(list: () => Promise<QuarantineRecord[]>): () => void {
    return this.state.watch((up) => {
      if (!up) return;
      void list().then(async (records) => {
        for (const record of records) await this.add(record);
        if (records.length > 0) this.logger.info({ entries: records.length }, 'quarantine entries of this node indexed in the state backend');
      });
    });
  }

  /** Every entry of the fleet, oldest first. */
  async list(): Promise<IndexedEntry[]> {
    const all = await this.state.client.hgetall(INDEX);
    return Object.keys(all)
      .sort()
      .map((id) => JSON.parse(all[id] ?? '{}') as IndexedEntry);
  }

  async get(id: string): Promise<IndexedEntry> {
    const text = await this.state.client.hget(INDEX, id);
    if (text === null) throw new Error(`no quarantine entry ${id} in the fleet's index`);
    return JSON.parse(text) as IndexedEntry;
  }

  /** Claims the release of an entry; false when another release holds or made it. */
  async claimRelease(id: string, ttlSeconds: number): Promise<boolean> {
    return (await this.state.client.set(RELEASED + id, `${this.state.nodeId} ${new Date().toISOString()}`, 'EX', Math.max(1, Math.ceil(ttlSeconds)), 'NX')) === 'OK';
  }

  /** Who released an entry, and when (or undefined). */
  async releasedBy(id: string): Promise<string | undefined> {
    return (await this.state.client.get(RELEASED + id)) ?? undefined;
  }

  async unclaimRelease(id: string): Promise<void> {
    await this.state.client.del(RELEASED + id);
  }
}

/** An original from its owner's admin listener. */
export async function fetchOriginal(entry: IndexedEntry, token: string): Promise<Buffer> {
  const url = `${entry.admin.replace(/\/$/, '')}/quarantine/${encodeURIComponent(entry.record.id)}/original`;
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`node ${entry.node} (${entry.admin}) answered ${response.status} for ${entry.record.id}: ${(await response.text()).trim()}`);
  return Buffer.from(await response.arrayBuffer());
}
