/**
 * The shared state of a fleet (`state.backend: redis://host:port[/db]`): one Redis
 * connection per process (ioredis; RESP, the Redis protocol) for commands, and one
 * for publish/subscribe. Every call is bounded by `state.timeout_ms`; with Redis down
 * or slow, no command is queued (the caller takes its per-node fallback at once),
 * the change is logged once and reported to `onChange` (the
 * `mailmoat_state_backend_up` gauge), and the client reconnects every
 * RECONNECT_INTERVAL_MS until Redis answers again.
 *
 * Every key starts with KEY_PREFIX (README "Fleet" lists them and their TTLs).
 */
import { Redis } from 'ioredis';
import { hostname, networkInterfaces } from 'node:os';
import { parseHostPort, type Policy } from '../config/schema.js';
import type { Logger } from '../observe/log.js';

/** How often a lost connection is tried again. */
const RECONNECT_INTERVAL_MS = 1000;
export const KEY_PREFIX = 'mailmoat:';

export interface SharedStateOptions {
  url: string;
  nodeId: string;
  timeoutMs: number;
  logger: Logger;
}

export class SharedState {
  readonly client: Redis;
  readonly nodeId: string;
  private subscriber: Redis | undefined;
  private subscribing: Promise<unknown> = Promise.resolve();
  private up = false;
  private readonly watchers = new Set<(up: boolean) => void>();
  private readonly channels = new Map<string, (message: string) => void>();

  constructor(private readonly options: SharedStateOptions) {
    this.nodeId = options.nodeId;
    this.client = this.connect('commands');
  }

  /** Whether Redis answered last time (callers skip it and take their fallback while it is down). */
  get available(): boolean {
    return this.up;
  }

  /** Called with true at each (re)connection and false at each loss; at once with the current state. */
  watch(watcher: (up: boolean) => void): () => void {
    this.watchers.add(watcher);
    watcher(this.up);
    return () => this.watchers.delete(watcher);
  }

  /** Resolves once Redis answers (a CLI command waits for it; the proxy does not, it starts on its fallback). */
  whenUp(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`the state backend ${this.options.url} does not answer`));
      }, timeoutMs);
      const stop = this.watch((up) => {
        if (!up) return;
        clearTimeout(timer);
        queueMicrotask(() => stop());
        resolve();
      });
    });
  }

  /** Receives every message published on a channel (resubscribed after a reconnection). */
  subscribe(channel: string, onMessage: (message: string) => void): void {
    this.channels.set(KEY_PREFIX + channel, onMessage);
    this.subscriber ??= this.connect('subscriber');
    this.subscribing = Promise.all([this.subscribing, this.subscriber.subscribe(KEY_PREFIX + channel).catch(() => undefined)]);
  }

  /** Resolves once every channel asked for so far is subscribed (or its attempt failed). */
  async whenSubscribed(): Promise<void> {
    await this.subscribing;
  }

  publish(channel: string, message: string): Promise<number> {
    return this.client.publish(KEY_PREFIX + channel, message);
  }

  async close(): Promise<void> {
    this.watchers.clear();
    await Promise.allSettled([this.client.quit(), this.subscriber?.quit()]);
    this.client.disconnect();
    this.subscriber?.disconnect();
  }

  private connect(role: 'commands' | 'subscriber'): Redis {
    const client = new Redis(this.options.url, {
      connectTimeout: this.options.timeoutMs,
      commandTimeout: role === 'commands' ? this.options.timeoutMs : undefined,
      // Down means down: a command fails at once instead of waiting in a queue.
      enableOfflineQueue: role === 'subscriber',
      maxRetriesPerRequest: 0,
      retryStrategy: () => RECONNECT_INTERVAL_MS,
    });
    client.on('error', () => undefined);
    if (role === 'subscriber') {
      client.on('message', (channel: string, message: string) => this.channels.get(channel)?.(message));
      return client;
    }
    client.on('ready', () => this.change(true));
    client.on('close', () => this.change(false));
    return client;
  }

  private change(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    const { logger, url } = this.options;
    if (up) logger.info({ backend: url, node: this.nodeId }, 'state backend up: limits, keys, alerts and the quarantine index are shared');
    else logger.warn({ backend: url, node: this.nodeId }, 'state backend down: per-node fallback until it answers again');
    for (const watcher of this.watchers) watcher(up);
  }
}

/** This node's name: state.node_id, or the host's name. */
export const nodeIdOf = (policy: Readonly<Policy>): string => policy.state.node_id || hostname();

/**
 * How the other nodes reach this node's admin listener: state.admin_url, else admin.listen; a
 * wildcard listen address (0.0.0.0, [::], as in a Kubernetes pod) is replaced by this host's
 * first address that is not loopback, which is what its peers can reach.
 */
export function adminUrlOf(policy: Readonly<Policy>, interfaces: () => ReturnType<typeof networkInterfaces> = networkInterfaces): string {
  if (policy.state.admin_url !== '') return policy.state.admin_url;
  const listen = parseHostPort(policy.admin.listen);
  if (listen === undefined) return '';
  if (listen.host !== '0.0.0.0' && listen.host !== '::') return `http://${policy.admin.listen}`;
  const family = listen.host === '::' ? 'IPv6' : 'IPv4';
  const external = Object.values(interfaces())
    .flatMap((addresses) => addresses ?? [])
    .find((address) => !address.internal && address.family === family && !address.address.toLowerCase().startsWith('fe80:'));
  if (external === undefined) return '';
  return family === 'IPv6' ? `http://[${external.address}]:${listen.port}` : `http://${external.address}:${listen.port}`;
}

/** One connection per process and backend, shared by the collaborators of every reloaded policy. */
const open = new Map<string, SharedState>();

/** The shared state of a policy, or undefined for `state.backend: local`. */
export function sharedStateFor(policy: Readonly<Policy>, logger: Logger): SharedState | undefined {
  const url = policy.state.backend;
  if (url === 'local') return undefined;
  const existing = open.get(url);
  if (existing !== undefined) return existing;
  const state = new SharedState({ url, nodeId: nodeIdOf(policy), timeoutMs: policy.state.timeout_ms, logger });
  open.set(url, state);
  return state;
}

/** Closes a policy's shared state (the proxy closes; tests, the demo, a CLI command). */
export async function closeSharedState(policy: Readonly<Policy>): Promise<void> {
  const state = open.get(policy.state.backend);
  open.delete(policy.state.backend);
  await state?.close();
}
