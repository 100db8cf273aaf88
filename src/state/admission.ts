/**
 * Per-address admission across a fleet (`state.backend: redis://…`): the sliding
 * minute of new connections and the concurrent sessions of one client network,
 * counted in Redis by one Lua script (atomic: two nodes cannot both take the last
 * place) with Redis's own clock (the nodes' clocks may differ).
 *
 * A session holds a lease (a member of the address's sorted set, scored by when it
 * expires); its node renews its leases every third of `state.session_lease_seconds`
 * and removes them when the sessions end, so the sessions of a node that crashed
 * stop counting when their leases run out.
 */
import { randomBytes } from 'node:crypto';
import { KEY_PREFIX, type SharedState } from './shared-state.js';
import { releaseOnce } from '../accept/release-once.js';

const MINUTE_MS = 60_000;

/** KEYS: rate, sessions. ARGV: max per minute, max sessions, lease member, lease ms, rate member. */
const ADMIT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ${MINUTE_MS})
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 'max_connections_per_address_per_minute' end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], ${MINUTE_MS})
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 'max_sessions_per_address' end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4])) end
return 'ok'
`;

/** KEYS: sessions sets. ARGV: lease ms, then one member per key. */
const RENEW_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, lease)
end
return #KEYS
`;

export interface SharedLimits {
  maxSessionsPerAddress: number;
  maxConnectionsPerAddressPerMinute: number;
}

export type SharedVerdict = { admitted: true; release: () => void } | { admitted: false; limit: string };

export class SharedAdmission {
  private readonly leases = new Map<string, string>();
  private readonly prefix = `${randomBytes(4).toString('hex')}`;
  private counter = 0;
  private readonly renewal: NodeJS.Timeout;

  constructor(
    private readonly state: SharedState,
    private readonly leaseMs: number,
  ) {
    this.renewal = setInterval(() => void this.renew(), Math.max(1, Math.floor(leaseMs / 3)));
    this.renewal.unref();
  }

  /** Whether the backend is worth asking now. */
  get available(): boolean {
    return this.state.available;
  }

  /** Counts a connection from `network`; rejects when Redis fails or is slow (the caller falls back to per-node counts). */
  async admit(network: string, limits: SharedLimits): Promise<SharedVerdict> {
    const member = `${this.state.nodeId}:${this.prefix}:${++this.counter}`;
    const sessions = `${KEY_PREFIX}sessions:${network}`;
    const rate = `${KEY_PREFIX}rate:${network}`;
    const verdict = await this.state.client.eval(ADMIT_SCRIPT, 2, rate, sessions, limits.maxConnectionsPerAddressPerMinute, limits.maxSessionsPerAddress, member, this.leaseMs, member);
    if (verdict !== 'ok') return { admitted: false, limit: String(verdict) };
    this.leases.set(member, sessions);
    return {
      admitted: true,
      release: releaseOnce(() => {
        this.leases.delete(member);
        // Not removed now (Redis down): the lease runs out by itself.
        this.state.client.zrem(sessions, member).catch(() => undefined);
      }),
    };
  }

  close(): void {
    clearInterval(this.renewal);
  }

  private async renew(): Promise<void> {
    if (this.leases.size === 0 || !this.state.available) return;
    const members = [...this.leases];
    await this.state.client.eval(RENEW_SCRIPT, members.length, ...members.map(([, key]) => key), this.leaseMs, ...members.map(([member]) => member)).catch(() => undefined);
  }
}
