/**
 * One net.Server per policy listener. For each accepted connection it resolves
 * the direction from the downstream address, decides whether to inspect, and
 * starts the listener's protocol session (SMTP or POP3) with its collaborators
 * handed in.
 * The upstream is fixed (host:port), the connection's original destination before an
 * iptables REDIRECT (`original-destination`, SO_ORIGINAL_DST; one that is the proxy
 * itself is refused with 421 4.4.6), or for POP3 named at login (`from-username`).
 * With `proxy_protocol: true` the connection must begin with a PROXY protocol header
 * (v1 or v2, from a load balancer); the client it names is the downstream for
 * direction, limits and logs, and a connection without one is refused.
 * Sockets are half-open capable (a downstream may send QUIT and FIN together and
 * still read the reply). On an implicit-TLS listener (RFC 8314) the TLS handshake
 * with the downstream comes first, and the upstream is dialled with TLS too.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { parseHostPort, type HostPort, type ListenerPolicy, type Policy } from '../config/schema.js';
import type { Inspector } from '../inspect/api.js';
import type { Logger, RetrievalSummary, TransactionSummary } from '../observe/log.js';
import { addressMatcher, directionResolver, inspectsSmtp, pop3UpstreamAllowList, startTlsMode, type DirectionResolver } from '../policy/resolve.js';
import { smtpKit, type LargeMessageSafety, type SmtpSession, type XforwardTrust } from '../session/smtp/kit.js';
import { pop3Kit, type Pop3Session } from '../session/pop3/kit.js';
import { acceptTls, type TlsSetup } from '../tls/upgrade.js';
import type { StartTlsMode } from '../tls/starttls.js';
import type { FlaggedMessage, QuarantineStore } from '../quarantine/store.js';
import { dialUpstream, dialUpstreamTls } from './upstream.js';
import { formatDestination, originalDestination, OriginalDestinationError, requireAddon } from './original-destination.js';
import { readProxyHeader, type Endpoint, ProxyHeaderError } from './proxy-protocol.js';
import { AdmissionControl, type Admission } from './admission.js';
import type { SharedAdmission } from '../state/admission.js';
import { protocolKit, type RefusalKind } from '../session/protocol.js';

export interface ListenerEvents {
  transaction: [TransactionSummary];
  retrieval: [RetrievalSummary];
  /** A session whose STARTTLS/STLS was passed through uninspected. */
  passthrough: [];
  /** A message or retrieval that was rewritten or refused. */
  flagged: [FlaggedMessage];
  /** A session started (workers count them for recycle_after). */
  session: [];
  /** A connection was refused by a limit (its policy key). */
  limit: [string];
}

export interface ListenerOptions {
  listener: ListenerPolicy;
  policy: Readonly<Policy>;
  inspector: Inspector;
  logger: Logger;
  tlsSetup: TlsSetup;
  quarantine: QuarantineStore | undefined;
  largeMessages: LargeMessageSafety | undefined;
  /** The fleet's per-address counts (state.backend: redis://…); absent: this node's alone. */
  sharedAdmission?: SharedAdmission | undefined;
}

/** What a listener derives from its policy, once per policy (at start and on each reload). */
interface Derived {
  directions: DirectionResolver;
  upstream: { kind: 'fixed'; address: HostPort } | { kind: 'original-destination' } | { kind: 'from-username' };
  /** Every listen address in the policy: an original destination among them is a loop. */
  listening: HostPort[];
  allowPop3Upstream: (host: string, port: number) => boolean;
  spoolDir: string;
  starttls: StartTlsMode;
  limitExempt: (address: string) => boolean;
  /** Peers whose XFORWARD is believed (smtp.xforward_from). */
  xforwardFrom: (address: string) => boolean;
}

function upstreamOf(listener: ListenerPolicy): Derived['upstream'] {
  if (listener.upstream === 'from-username' || listener.upstream === 'original-destination') return { kind: listener.upstream };
  const address = parseHostPort(listener.upstream);
  if (address === undefined) throw new Error(`invalid upstream address ${listener.upstream}`);
  return { kind: 'fixed', address };
}

function derive(options: ListenerOptions): Derived {
  return {
    directions: directionResolver(options.policy.networks.internal),
    upstream: upstreamOf(options.listener),
    listening: options.policy.listeners.flatMap((listener) => parseHostPort(listener.listen) ?? []),
    allowPop3Upstream: pop3UpstreamAllowList(options.policy.pop3),
    spoolDir: options.policy.spool.dir || tmpdir(),
    starttls: startTlsMode(options.listener, options.policy),
    limitExempt: addressMatcher(options.policy.limits.exempt),
    xforwardFrom: addressMatcher(options.policy.smtp.xforward_from),
  };
}

type Session = SmtpSession | Pop3Session;

const label = (endpoint: Endpoint): string => `${endpoint.address}:${endpoint.port}`;

/** How long a refused connection may take to read its 421 before it is closed. */
const REFUSAL_LINGER_MS = 2000;

/** After the drain deadline, how long closing sessions get to send their last reply before their sockets go. */
const LAST_WORD_MS = 1000;

export class Listener extends EventEmitter<ListenerEvents> {
  private readonly server: Server;
  private readonly sessions = new Set<Session>();
  private readonly sockets = new Set<Socket>();
  /** Session ids: a random per-listener prefix and a counter (cheaper than random bytes per connection). */
  private readonly idPrefix = randomBytes(4).toString('hex');
  private sessionCount = 0;
  private options: ListenerOptions;
  private derived: Derived;
  /** Set by drain(): a connection that still arrives (a cluster worker may get one late) is closed at once. */
  private draining = false;
  private readonly admission = new AdmissionControl(() => ({
    maxSessions: this.options.policy.limits.max_sessions,
    maxSessionsPerAddress: this.options.policy.limits.max_sessions_per_address,
    maxConnectionsPerAddressPerMinute: this.options.policy.limits.max_connections_per_address_per_minute,
    exempt: this.derived.limitExempt,
    ipv6ClientPrefixBits: this.options.policy.limits.ipv6_client_prefix_bits,
  }), Date.now, () => this.options.sharedAdmission);

  constructor(options: ListenerOptions) {
    super();
    this.options = options;
    this.derived = derive(options);
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  /**
   * A reloaded policy and its collaborators, for the sessions that start from now on;
   * running sessions finish with what they started with. Resolves once every session
   * that was running at the update has closed (then the old collaborators may go).
   */
  update(options: ListenerOptions): Promise<void> {
    this.derived = derive(options);
    this.options = options;
    return this.closedAll([...this.sessions]);
  }

  /**
   * Drain (SIGTERM): stop accepting, let each session finish what it is doing (an SMTP
   * transaction, a POP3 command) and close it politely; after `deadlineSeconds` the rest
   * are closed with 421 / -ERR. Resolves when no session is left.
   */
  async drain(deadlineSeconds: number): Promise<void> {
    this.draining = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sessions = [...this.sessions];
    for (const session of sessions) session.shutdown();
    const deadline = setTimeout(() => {
      for (const session of this.sessions) session.terminate();
      // Spliced (TLS passthrough) sessions have no protocol left to close politely.
      setTimeout(() => {
        for (const socket of this.sockets) socket.destroy();
      }, LAST_WORD_MS).unref();
    }, deadlineSeconds * 1000);
    deadline.unref();
    await this.closedAll(sessions);
    clearTimeout(deadline);
    for (const socket of this.sockets) socket.destroy();
    await stopped;
  }

  private closedAll(sessions: readonly Session[]): Promise<void> {
    return Promise.all(sessions.map((session) => (this.sessions.has(session) ? new Promise<void>((resolve) => session.once('close', () => resolve())) : undefined))).then(() => undefined);
  }

  async listen(): Promise<AddressInfo> {
    const address = parseHostPort(this.options.listener.listen);
    if (address === undefined) throw new Error(`invalid listen address ${this.options.listener.listen}`);
    // A gateway that cannot read original destinations would refuse every connection: refuse to start instead.
    if (this.derived.upstream.kind === 'original-destination') requireAddon();
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
    if (this.draining) {
      socket.destroy();
      return;
    }
    const peer: Endpoint = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    if (!this.options.listener.proxy_protocol) return this.admit(socket, peer);
    this.track(socket);
    socket.on('error', () => undefined);
    readProxyHeader(socket, this.options.policy.timeouts.proxy_header_seconds * 1000).then(
      // LOCAL / UNKNOWN (a load balancer's health check): the connection's own addresses.
      (header) => this.admit(socket, header.source ?? peer),
      (error: ProxyHeaderError) => {
        this.options.logger.info({ downstream: label(peer), reason: error.reason, detail: error.message }, 'connection refused: no valid PROXY protocol header');
        this.sendRefusal(socket, 'proxy-header-required');
      },
    );
  }

  private track(socket: Socket): void {
    if (this.sockets.has(socket)) return;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** `client`: who is on the other end (the connection's peer, or the client a PROXY header names). */
  private admit(socket: Socket, client: Endpoint): void {
    const admission = this.admission.admitAcrossFleet(client.address);
    if (!(admission instanceof Promise)) return this.admitted(socket, client, admission);
    // The fleet's counts are asked (bounded by state.timeout_ms); the socket is not read meanwhile.
    this.track(socket);
    socket.on('error', () => undefined);
    void admission.then((verdict) => {
      if (socket.destroyed) {
        if (verdict.admitted) verdict.release();
        return;
      }
      this.admitted(socket, client, verdict);
    });
  }

  private admitted(socket: Socket, client: Endpoint, admission: Admission): void {
    if (!admission.admitted) return this.refuse(socket, client, admission.limit);
    socket.once('close', admission.release);
    this.track(socket);
    let upstream: HostPort | undefined;
    try {
      upstream = this.upstreamFor(socket);
    } catch (error) {
      if (error instanceof OriginalDestinationError) return this.refuseUnroutable(socket, client, error);
      throw error;
    }
    if (this.options.listener.tls !== 'implicit') return this.startSession(socket, upstream, client);
    socket.on('error', () => undefined);
    const { policy, tlsSetup, logger } = this.options;
    // Bytes already read (behind a PROXY header) are the ClientHello: TLS gets them.
    acceptTls(socket, tlsSetup, this.tlsName(upstream), policy.tls.handshake_seconds, 'hand-over').then(
      (secure) => this.startSession(secure, upstream, client),
      (error: unknown) => {
        logger.info({ downstream: label(client), reason: (error as Error).message }, 'TLS handshake with the downstream failed');
        socket.destroy();
      },
    );
  }

  /**
   * This connection's upstream: the fixed one, its original destination (throws
   * OriginalDestinationError), or undefined for POP3 `from-username` (the login names it).
   */
  private upstreamFor(socket: Socket): HostPort | undefined {
    const { upstream, listening } = this.derived;
    if (upstream.kind === 'fixed') return upstream.address;
    if (upstream.kind === 'from-username') return undefined;
    const bound = this.server.address();
    const own = bound !== null && typeof bound === 'object' ? [...listening, { host: bound.address, port: bound.port }] : listening;
    return originalDestination(socket, own);
  }

  /** The name on our certificate when a client sends no SNI: tls_name, else the upstream's host. */
  private tlsName(upstream: HostPort | undefined): string {
    return this.options.listener.tls_name ?? upstream?.host ?? 'localhost';
  }

  /** Over a limit: told to come back later. */
  private refuse(socket: Socket, client: Endpoint, limit: string): void {
    this.options.logger.info({ downstream: label(client), limit }, 'connection refused by a limit');
    this.emit('limit', limit);
    this.sendRefusal(socket, 'too-many-sessions');
  }

  /** No usable original destination (a loop, a connection that was not redirected, no addon): 421, never a guess. */
  private refuseUnroutable(socket: Socket, client: Endpoint, error: OriginalDestinationError): void {
    const destination = error.destination === undefined ? undefined : formatDestination(error.destination);
    this.options.logger.warn({ downstream: label(client), reason: error.reason, destination, detail: error.message }, 'connection refused: no usable original destination');
    this.sendRefusal(socket, error.reason === 'loop' ? 'routing-loop' : 'no-original-destination');
  }

  /** The last word to a refused connection (in plaintext only: an implicit-TLS client gets the connection closed). */
  private sendRefusal(socket: Socket, kind: RefusalKind): void {
    socket.on('error', () => undefined);
    if (this.options.listener.tls === 'implicit') {
      socket.destroy();
      return;
    }
    socket.end(protocolKit(this.options.listener.protocol).refusal(kind));
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
  }

  private startSession(socket: Socket, upstream: HostPort | undefined, client: Endpoint): void {
    const id = `${this.idPrefix}-${(++this.sessionCount).toString(36)}`;
    const session = this.options.listener.protocol === 'pop3' ? this.pop3Session(socket, id, upstream, client) : this.smtpSession(socket, id, upstream, client);
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    session.on('passthrough', () => this.emit('passthrough'));
    session.on('flagged', (message) => this.emit('flagged', message));
    this.emit('session');
    session.start();
  }

  /** Dials the upstream, with TLS from the first byte on an implicit-TLS listener. */
  private dial(address: HostPort): Promise<Socket> {
    const { policy, tlsSetup, listener } = this.options;
    if (listener.tls === 'implicit') return dialUpstreamTls(address, policy.timeouts.upstream_connect_seconds, tlsSetup, policy.tls.handshake_seconds);
    return dialUpstream(address, policy.timeouts.upstream_connect_seconds);
  }

  private smtpSession(socket: Socket, id: string, upstreamAddress: HostPort | undefined, client: Endpoint): SmtpSession {
    const { policy, listener, logger, inspector } = this.options;
    const { directions, spoolDir, starttls } = this.derived;
    if (upstreamAddress === undefined) throw new Error('an SMTP listener needs an upstream');
    const direction = directions.directionOf(client.address);
    const session = smtpKit.create({
      id,
      downstream: socket,
      downstreamLabel: label(client),
      downstreamAddress: client.address,
      connectUpstream: () => this.dial(upstreamAddress),
      upstreamLabel: this.derived.upstream.kind === 'fixed' ? listener.upstream : formatDestination(upstreamAddress),
      direction,
      inspect: inspectsSmtp(policy.inspect.smtp, direction),
      inspector,
      policy,
      spoolDir,
      logger,
      starttls,
      tls: listener.tls,
      tlsSetup: this.options.tlsSetup,
      tlsName: this.tlsName(upstreamAddress),
      upstreamHost: upstreamAddress.host,
      quarantine: this.options.quarantine,
      largeMessages: this.options.largeMessages,
      xforward: this.derived.xforwardFrom(client.address) ? this.xforwardTrust() : undefined,
    });
    session.on('transaction', (summary) => this.emit('transaction', summary));
    return session;
  }

  /** What a trusted peer's forwarded client decides: its direction, inspection and per-address limits. */
  private xforwardTrust(): XforwardTrust {
    return {
      directionOf: (address) => this.derived.directions.directionOf(address),
      inspects: (direction) => inspectsSmtp(this.options.policy.inspect.smtp, direction),
      admit: (address) => this.admission.admitForwarded(address),
    };
  }

  /** POP3 retrievals are inspected whatever the direction (`inspect.pop3`): the mail comes from the server. */
  private pop3Session(socket: Socket, id: string, upstreamAddress: HostPort | undefined, client: Endpoint): Pop3Session {
    const { policy, logger, inspector } = this.options;
    const { allowPop3Upstream, spoolDir, starttls } = this.derived;
    const session = pop3Kit.create({
      id,
      downstream: socket,
      downstreamLabel: label(client),
      upstream: upstreamAddress,
      allowUpstream: allowPop3Upstream,
      dial: (address) => this.dial(address),
      inspect: policy.inspect.pop3,
      inspector,
      policy,
      spoolDir,
      logger,
      starttls,
      tls: this.options.listener.tls,
      tlsSetup: this.options.tlsSetup,
      tlsName: this.tlsName(upstreamAddress),
      quarantine: this.options.quarantine,
    });
    session.on('retrieval', (summary) => this.emit('retrieval', summary));
    return session;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }
}
