/**
 * Administrator alerts across a fleet: the events of every node go into one batch
 * (a Redis list), the node whose event opened the batch (SET NX with the batch's
 * length) sends the notice when the batch ends, taking every event at once (a Lua
 * script: LRANGE and DEL together, so no event goes in two notices), and
 * `alerts.max_per_hour` counts the notices of the whole fleet (a sorted set over
 * Redis's clock). Events held back by the cap are counted for the next notice.
 */
import type { FlaggedMessage } from '../quarantine/store.js';
import { KEY_PREFIX, type SharedState } from './shared-state.js';

const HOUR_MS = 3_600_000;
const PENDING = `${KEY_PREFIX}alerts:pending`;
const BATCH = `${KEY_PREFIX}alerts:batch`;
const SENT = `${KEY_PREFIX}alerts:sent`;
const HELD = `${KEY_PREFIX}alerts:held`;

/** KEYS: pending, batch. ARGV: event, pending TTL ms, node, batch ms. 1 = this event opened the batch. */
const ADD_SCRIPT = `
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
if redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[4]), 'NX') then return 1 end
return 0
`;

const TAKE_SCRIPT = `
local events = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return events
`;

/** KEYS: sent. ARGV: max per hour, member. 1 = this notice may go. */
const ALLOW_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ${HOUR_MS})
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ${HOUR_MS})
return 1
`;

/** KEYS: held. Returns the count and resets it. */
const TAKE_HELD_SCRIPT = `
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('DEL', KEYS[1])
return held
`;

export class SharedAlerts {
  private counter = 0;

  constructor(private readonly state: SharedState) {}

  get available(): boolean {
    return this.state.available;
  }

  /** Adds an event to the fleet's batch; resolves true when this node opened the batch (it sends the notice). */
  async add(event: FlaggedMessage, batchMs: number, pendingTtlMs: number): Promise<boolean> {
    // One script: the event is in the batch and the batch has an owner, or neither.
    return (await this.state.client.eval(ADD_SCRIPT, 2, PENDING, BATCH, JSON.stringify(event), pendingTtlMs, this.state.nodeId, batchMs)) === 1;
  }

  /** Every event of the fleet's batch, taken at once (no other node gets them). */
  async take(): Promise<FlaggedMessage[]> {
    const events = (await this.state.client.eval(TAKE_SCRIPT, 2, PENDING, BATCH)) as string[];
    return events.map((text) => JSON.parse(text) as FlaggedMessage);
  }

  /** Whether one more notice fits in the fleet's alerts.max_per_hour (and counts it). */
  async allow(maxPerHour: number): Promise<boolean> {
    return (await this.state.client.eval(ALLOW_SCRIPT, 1, SENT, maxPerHour, `${this.state.nodeId}:${Date.now()}:${++this.counter}`)) === 1;
  }

  async holdBack(events: number): Promise<void> {
    await this.state.client.incrby(HELD, events);
    await this.state.client.pexpire(HELD, HOUR_MS * 24);
  }

  async takeHeld(): Promise<number> {
    return Number(await this.state.client.eval(TAKE_HELD_SCRIPT, 1, HELD));
  }
}
