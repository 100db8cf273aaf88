/**
 * The quarantine as one node's command line sees it in a fleet (`state.backend:
 * redis://…`): every node's entries from the shared index, an original read from
 * this node's folder when it is its own, else fetched from its owner's admin
 * listener with the fleet's token (state/quarantine-index.ts).
 */
import type { Policy } from '../config/schema.js';
import { createLogger } from '../observe/log.js';
import { readAdminToken } from '../state/admin-token.js';
import { fetchOriginal, QuarantineIndex, type IndexedEntry } from '../state/quarantine-index.js';
import { adminUrlOf, closeSharedState, sharedStateFor } from '../state/shared-state.js';
import type { QuarantineStore } from './store.js';

/** How long a command waits for the state backend to answer. */
const CONNECT_TIMEOUT_MS = 5000;

export class FleetQuarantine {
  private constructor(
    private readonly policy: Readonly<Policy>,
    readonly index: QuarantineIndex,
    private readonly store: QuarantineStore,
  ) {}

  /** The fleet's view, or undefined with `state.backend: local`. */
  static async open(policy: Readonly<Policy>, store: QuarantineStore): Promise<FleetQuarantine | undefined> {
    const shared = sharedStateFor(policy, createLogger('silent'));
    if (shared === undefined) return undefined;
    try {
      await shared.whenUp(Math.max(CONNECT_TIMEOUT_MS, policy.state.timeout_ms));
    } catch (error) {
      await closeSharedState(policy);
      throw error;
    }
    return new FleetQuarantine(policy, new QuarantineIndex(shared, adminUrlOf(policy), createLogger('silent')), store);
  }

  /** Whether an entry is held on this node. */
  own(entry: IndexedEntry): boolean {
    return entry.node === this.index.nodeId;
  }

  async original(entry: IndexedEntry): Promise<Buffer> {
    if (this.own(entry)) return this.store.original(entry.record.id);
    const token = readAdminToken(this.policy.state.admin_token_file);
    if (token === undefined) throw new Error(`entry ${entry.record.id} is held on node ${entry.node}: set state.admin_token_file (the fleet's token) to fetch it`);
    return fetchOriginal(entry, token);
  }

  close(): Promise<void> {
    return closeSharedState(this.policy);
  }
}
