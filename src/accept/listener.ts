/**
 * One net.Server per policy listener. For each accepted connection it resolves
 * the direction from the downstream address, decides whether to inspect, and
 * starts a protocol session with its collaborators handed in.
 * Sockets are half-open capable (a downstream may send QUIT and FIN together and
 * still read the reply).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { parseHostPort, type HostPort, type ListenerPolicy, type Policy } from '../config/schema.js';
import type { Inspector } from '../inspect/api.js';
import type { Logger, TransactionSummary } from '../observe/log.js';
import { directionResolver, inspectsSmtp, type DirectionResolver } from '../policy/resolve.js';
import { SmtpSession } from '../session/smtp/session.js';
import { dialUpstream } from './upstream.js';

export interface ListenerEvents {
  transaction: [TransactionSummary];
}

export interface ListenerOptions {
  listener: ListenerPolicy;
  policy: Readonly<Policy>;
  inspector: Inspector;
  logger: Logger;
}

export class Listener extends EventEmitter<ListenerEvents> {
  private readonly server: Server;
  private readonly sessions = new Set<SmtpSession>();
  private readonly sockets = new Set<Socket>();
  private readonly directions: DirectionResolver;
  private readonly upstreamAddress: HostPort;
  private readonly spoolDir: string;
  /** Session ids: a random per-listener prefix and a counter (cheaper than random bytes per connection). */
  private readonly idPrefix = randomBytes(4).toString('hex');
  private sessionCount = 0;

  constructor(private readonly options: ListenerOptions) {
    super();
    const upstream = parseHostPort(options.listener.upstream);
    if (upstream === undefined) throw new Error(`invalid upstream address ${options.listener.upstream}`);
    this.upstreamAddress = upstream;
    this.directions = directionResolver(options.policy.networks.internal);
    this.spoolDir = options.policy.spool.dir || tmpdir();
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  async listen(): Promise<AddressInfo> {
    const address = parseHostPort(this.options.listener.listen);
    if (address === undefined) throw new Error(`invalid listen address ${this.options.listener.listen}`);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: address.host, port: address.port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (error) => this.options.logger.error({ err: error }, 'listener error'));
    const bound = this.server.address() as AddressInfo;
    this.options.logger.info({ listen: `${bound.address}:${bound.port}`, upstream: this.options.listener.upstream, protocol: this.options.listener.protocol }, 'listening');
    return bound;
  }

  /** Stops accepting and closes every open session's sockets. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private accept(socket: Socket): void {
    const { policy, listener, logger, inspector } = this.options;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const upstreamAddress = this.upstreamAddress;
    const remoteAddress = socket.remoteAddress ?? '';
    const direction = this.directions.directionOf(remoteAddress);
    const session = new SmtpSession({
      id: `${this.idPrefix}-${(++this.sessionCount).toString(36)}`,
      downstream: socket,
      downstreamLabel: `${remoteAddress}:${socket.remotePort ?? 0}`,
      connectUpstream: () => dialUpstream(upstreamAddress, policy.timeouts.upstream_connect_seconds),
      upstreamLabel: listener.upstream,
      direction,
      inspect: inspectsSmtp(policy.inspect.smtp, direction),
      inspector,
      policy,
      spoolDir: this.spoolDir,
      logger,
    });
    this.sessions.add(session);
    session.on('transaction', (summary) => this.emit('transaction', summary));
    session.once('close', () => this.sessions.delete(session));
    session.start();
  }

  get activeSessions(): number {
    return this.sessions.size;
  }
}
