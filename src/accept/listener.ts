/**
 * One net.Server per policy listener. For each accepted connection it resolves
 * the direction from the downstream address, decides whether to inspect, and
 * starts the listener's protocol session (SMTP or POP3) with its collaborators
 * handed in.
 * Sockets are half-open capable (a downstream may send QUIT and FIN together and
 * still read the reply).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { parseHostPort, type HostPort, type ListenerPolicy, type Policy } from '../config/schema.js';
import type { Inspector } from '../inspect/api.js';
import type { Logger, RetrievalSummary, TransactionSummary } from '../observe/log.js';
import { directionResolver, inspectsSmtp, pop3UpstreamAllowList, type DirectionResolver } from '../policy/resolve.js';
import { SmtpSession } from '../session/smtp/session.js';
import { Pop3Session } from '../session/pop3/session.js';
import { dialUpstream } from './upstream.js';

export interface ListenerEvents {
  transaction: [TransactionSummary];
  retrieval: [RetrievalSummary];
}

export interface ListenerOptions {
  listener: ListenerPolicy;
  policy: Readonly<Policy>;
  inspector: Inspector;
  logger: Logger;
}

export class Listener extends EventEmitter<ListenerEvents> {
  private readonly server: Server;
  private readonly sessions = new Set<SmtpSession | Pop3Session>();
  private readonly sockets = new Set<Socket>();
  private readonly directions: DirectionResolver;
  /** The fixed upstream; undefined for a POP3 listener with `upstream: from-username`. */
  private readonly upstreamAddress: HostPort | undefined;
  private readonly allowPop3Upstream: (host: string, port: number) => boolean;
  private readonly spoolDir: string;
  /** Session ids: a random per-listener prefix and a counter (cheaper than random bytes per connection). */
  private readonly idPrefix = randomBytes(4).toString('hex');
  private sessionCount = 0;

  constructor(private readonly options: ListenerOptions) {
    super();
    const fromUsername = options.listener.upstream === 'from-username';
    const upstream = fromUsername ? undefined : parseHostPort(options.listener.upstream);
    if (!fromUsername && upstream === undefined) throw new Error(`invalid upstream address ${options.listener.upstream}`);
    this.upstreamAddress = upstream;
    this.allowPop3Upstream = pop3UpstreamAllowList(options.policy.pop3);
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
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const id = `${this.idPrefix}-${(++this.sessionCount).toString(36)}`;
    const session = this.options.listener.protocol === 'pop3' ? this.pop3Session(socket, id) : this.smtpSession(socket, id);
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    session.start();
  }

  private smtpSession(socket: Socket, id: string): SmtpSession {
    const { policy, listener, logger, inspector } = this.options;
    const upstreamAddress = this.upstreamAddress;
    if (upstreamAddress === undefined) throw new Error('an SMTP listener needs a fixed upstream');
    const remoteAddress = socket.remoteAddress ?? '';
    const direction = this.directions.directionOf(remoteAddress);
    const session = new SmtpSession({
      id,
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
    session.on('transaction', (summary) => this.emit('transaction', summary));
    return session;
  }

  /** POP3 retrievals are inspected whatever the direction (`inspect.pop3`): the mail comes from the server. */
  private pop3Session(socket: Socket, id: string): Pop3Session {
    const { policy, logger, inspector } = this.options;
    const session = new Pop3Session({
      id,
      downstream: socket,
      downstreamLabel: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
      upstream: this.upstreamAddress,
      allowUpstream: this.allowPop3Upstream,
      dial: (address) => dialUpstream(address, policy.timeouts.upstream_connect_seconds),
      inspect: policy.inspect.pop3,
      inspector,
      policy,
      spoolDir: this.spoolDir,
      logger,
    });
    session.on('retrieval', (summary) => this.emit('retrieval', summary));
    return session;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }
}
