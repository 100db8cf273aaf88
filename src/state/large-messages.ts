/**
 * Large Message Safety across a fleet: a node that cut an oversized transaction off
 * stores its key (the SHA-256 of capture/large-messages.ts) in Redis with its TTL
 * (`limits.large_message.remember_for`) and publishes it; every node keeps a mirror
 * in memory (loaded by a SCAN at each connection, then fed by the channel), so the
 * session's lookup stays synchronous and answers even while Redis is down.
 */
import type { Logger } from '../observe/log.js';
import { KEY_PREFIX, type SharedState } from './shared-state.js';

const CHANNEL = 'large-messages';
const KEY_PATTERN = /^[0-9a-f]{64}$/;
/** Keys asked for per SCAN step. */
const SCAN_COUNT = 1000;

export class SharedLargeMessages {
  private unwatch: () => void = () => undefined;

  constructor(
    private readonly state: SharedState,
    private readonly logger: Logger,
  ) {}

  /** Feeds `learn` with every key the fleet remembers (now and as they come). */
  mirror(learn: (key: string, untilMs: number) => void): void {
    this.state.subscribe(CHANNEL, (message) => {
      const [key, ttl] = message.split(' ');
      if (key === undefined || !KEY_PATTERN.test(key) || !(Number(ttl) > 0)) return;
      learn(key, Date.now() + Number(ttl));
      this.logger.info({ key: key.slice(0, 12) }, 'large message key learned from the fleet');
    });
    this.unwatch = this.state.watch((up) => {
      if (up) void this.load(learn);
    });
  }

  /** A retired policy's memory stops loading keys at reconnections (the newer one has the channel). */
  stop(): void {
    this.unwatch();
  }

  /** Stores and announces a key; rejects when Redis does not take it (the node's own file still has it). */
  async remember(key: string, ttlMs: number): Promise<void> {
    await this.state.client.set(`${KEY_PREFIX}lms:${key}`, '1', 'PX', ttlMs);
    await this.state.publish(CHANNEL, `${key} ${ttlMs}`);
  }

  private async load(learn: (key: string, untilMs: number) => void): Promise<void> {
    try {
      let cursor = '0';
      let loaded = 0;
      do {
        const [next, keys] = await this.state.client.scan(cursor, 'MATCH', `${KEY_PREFIX}lms:*`, 'COUNT', SCAN_COUNT);
        cursor = next;
        for (const name of keys) {
          const key = name.slice(`${KEY_PREFIX}lms:`.length);
          const ttl = await this.state.client.pttl(name);
          if (!KEY_PATTERN.test(key) || ttl <= 0) continue;
          learn(key, Date.now() + ttl);
          loaded++;
        }
      } while (cursor !== '0');
      this.logger.info({ keys: loaded }, 'large message keys loaded from the state backend');
    } catch (error) {
      this.logger.warn({ reason: (error as Error).message }, 'large message keys could not be loaded from the state backend');
    }
  }
}
