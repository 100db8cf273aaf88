/**
 * Connection admission for one listener: at most `max_sessions` at once, at most
 * `max_sessions_per_address` from one downstream address, and at most
 * `max_connections_per_address_per_minute` new ones per address per minute (a
 * sliding minute). Over a limit the downstream is told to come back later
 * (421 4.7.0 / -ERR [SYS/TEMP], RFC 5321 3.8) before anything else happens, so
 * one client cannot take every session from the others. Addresses in `limits.exempt`
 * (a Postfix that hands every message over from 127.0.0.1) count only towards
 * `max_sessions`. A client forwarded by such a peer with XFORWARD is limited by its own
 * address, each of its transactions counting as a connection (`admitForwarded`).
 *
 * An address is counted as its client network (policy/client-network.ts): an
 * IPv4-mapped IPv6 address as its IPv4, an IPv6 address by its prefix
 * (`ipv6ClientPrefixBits`), so one host cannot multiply its share by changing the
 * low bits of its address.
 *
 * In a fleet (`state.backend: redis://…`) the two per-address limits are counted
 * across every node (state/admission.ts) and admitAcrossFleet() answers asynchronously;
 * `max_sessions` stays per node (it guards this process). When the backend is down
 * or slower than `state.timeout_ms`, the per-node counts here decide (README "Fleet").
 * A forwarded client's limits are counted per node.
 */
import { clientNetwork } from '../policy/client-network.js';
import { releaseOnce } from './release-once.js';
import { SlidingCount } from './sliding-count.js';
import type { SharedAdmission } from '../state/admission.js';

const MINUTE_MS = 60_000;
/** Addresses remembered for the per-minute rate before old ones are pruned. */
const PRUNE_ABOVE_ADDRESSES = 10_000;

export interface AdmissionLimits {
  maxSessions: number;
  maxSessionsPerAddress: number;
  maxConnectionsPerAddressPerMinute: number;
  /** Trusted peers (limits.exempt: a content filter's Postfix, a load balancer): no per-address limit. */
  exempt: (address: string) => boolean;
  ipv6ClientPrefixBits: number;
}

export type Admission = { admitted: true; release: () => void } | { admitted: false; limit: string };

export class AdmissionControl {
  private total = 0;
  private readonly perAddress = new Map<string, number>();
  private readonly recent = new Map<string, SlidingCount>();

  /** `limits` is read at each connection, so a reloaded policy applies at once. */
  constructor(
    private readonly limits: () => AdmissionLimits,
    private readonly now: () => number = Date.now,
    /** The fleet's counts, when the policy shares state (read at each connection, as the limits are). */
    private readonly shared: () => SharedAdmission | undefined = () => undefined,
  ) {}

  /** This node's counts alone. */
  admit(downstreamAddress: string): Admission {
    const limits = this.limits();
    if (limits.exempt(downstreamAddress)) return this.take(limits.maxSessions);
    return this.admitHere(clientNetwork(downstreamAddress, limits.ipv6ClientPrefixBits), limits);
  }

  /** The fleet's counts when the backend is up (a promise), else this node's at once. */
  admitAcrossFleet(downstreamAddress: string): Admission | Promise<Admission> {
    const shared = this.shared();
    if (shared?.available !== true) return this.admit(downstreamAddress);
    const limits = this.limits();
    if (limits.exempt(downstreamAddress)) return this.take(limits.maxSessions);
    const address = clientNetwork(downstreamAddress, limits.ipv6ClientPrefixBits);
    return shared.admit(address, limits).then(
      (verdict): Admission => {
        if (!verdict.admitted) return verdict;
        // Counted here too, so a fallback later still knows this node's sessions.
        const local = this.take(limits.maxSessions, address);
        if (!local.admitted) {
          verdict.release();
          return local;
        }
        return {
          admitted: true,
          release: () => {
            verdict.release();
            local.release();
          },
        };
      },
      () => this.admitHere(address, limits),
    );
  }

  /**
   * One transaction of a client a trusted peer forwarded (XFORWARD): the two per-address limits
   * apply to the client's address, a transaction counting as a connection; the peer's own session
   * already counts towards max_sessions. This node's counts (the peer is this node's own Postfix).
   */
  admitForwarded(clientAddress: string): Admission {
    const limits = this.limits();
    if (limits.exempt(clientAddress)) return { admitted: true, release: () => undefined };
    const address = clientNetwork(clientAddress, limits.ipv6ClientPrefixBits);
    const rate = this.countRate(address, limits);
    if (rate !== undefined) return rate;
    if ((this.perAddress.get(address) ?? 0) >= limits.maxSessionsPerAddress) return { admitted: false, limit: 'max_sessions_per_address' };
    return this.take(Infinity, address, false);
  }

  private admitHere(address: string, limits: AdmissionLimits): Admission {
    const rate = this.countRate(address, limits);
    if (rate !== undefined) return rate;
    if (this.total >= limits.maxSessions) return { admitted: false, limit: 'max_sessions' };
    if ((this.perAddress.get(address) ?? 0) >= limits.maxSessionsPerAddress) return { admitted: false, limit: 'max_sessions_per_address' };
    return this.take(limits.maxSessions, address);
  }

  /** Counts a new connection of `address` in its sliding minute; a refusal when it is over the rate. */
  private countRate(address: string, limits: AdmissionLimits): Admission | undefined {
    const now = this.now();
    if (this.recent.size > PRUNE_ABOVE_ADDRESSES) this.prune();
    let window = this.recent.get(address);
    if (window === undefined) {
      window = new SlidingCount(MINUTE_MS);
      this.recent.set(address, window);
    }
    if (window.count(now) >= limits.maxConnectionsPerAddressPerMinute) return { admitted: false, limit: 'max_connections_per_address_per_minute' };
    window.add(now);
    return undefined;
  }

  /**
   * A session counted towards max_sessions (unless `counted` is false: a forwarded client's
   * transaction) and, unless its address is exempt, towards its address's count.
   */
  private take(maxSessions: number, address?: string, counted = true): Admission {
    if (this.total >= maxSessions) return { admitted: false, limit: 'max_sessions' };
    if (counted) this.total++;
    if (address !== undefined) this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    return {
      admitted: true,
      release: releaseOnce(() => {
        if (counted) this.total--;
        if (address === undefined) return;
        const left = (this.perAddress.get(address) ?? 1) - 1;
        if (left === 0) this.perAddress.delete(address);
        else this.perAddress.set(address, left);
      }),
    };
  }

  /** Forgets addresses whose last connection is over a minute old (bounded memory). */
  private prune(): void {
    const now = this.now();
    for (const [address, window] of this.recent) if (window.expired(now)) this.recent.delete(address);
  }
}
