/**
 * One POP3 proxy session: a downstream mail client, its own upstream POP3
 * server connection, and the state machine between them.
 *
 * RFC 1939 (AUTHORIZATION, TRANSACTION, UPDATE on QUIT; multi-line responses end
 * with CRLF "." CRLF and are dot-stuffed), RFC 2449 (CAPA, response codes),
 * RFC 5034 (AUTH continuation lines relayed, never logged), RFC 2595 (STLS per
 * the listener's policy: refused, relayed and spliced uninspected, or intercepted:
 * both legs upgraded, plaintext sent behind the command discarded).
 *
 * Invariants:
 *  - One command at a time: the next downstream line is read only after the
 *    previous response was relayed (PIPELINING is not advertised).
 *  - State changes on the upstream's +OK: TRANSACTION after a positive PASS,
 *    APOP or AUTH, never on the downstream's command alone.
 *  - RETR and TOP responses are captured (unstuffed, into a spool), inspected, and
 *    only then sent, re-stuffed: the original bytes when clean, the rewritten
 *    message with its own octet count otherwise. A message that cannot be
 *    inspected gets -ERR [SYS/TEMP] and stays on the server; when the response was
 *    already committed by the keepalive, the connection is cut before the dot.
 *  - The upstream gets QUIT only when the downstream sent QUIT: a downstream that
 *    disappears, times out or is cut off never causes the upstream to enter UPDATE
 *    and delete what it marked (RFC 1939 6).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { HostPort, Policy } from '../../config/schema.js';
import type { Inspector, MessageSource } from '../../inspect/api.js';
import type { Logger, RetrievalSummary } from '../../observe/log.js';
import type { Spool } from '../../capture/spool.js';
import { CLOSED, SocketReader } from '../../wire/socket-reader.js';
import { PhaseTimer } from '../timers.js';
import type { LineEvent } from '../../wire/line-reader.js';
import { DataDecoder, END_OF_DATA } from '../../wire/dot-codec.js';
import { destroyAfterLinger, writeAll } from '../../wire/socket-write.js';
import { StuffedWriter, WriterBusyError } from '../../wire/stuffed-writer.js';
import { parseCommand, parseProxyLogin, type ParsedCommand, type Pop3State } from './commands.js';
import { POP3_RESPONSES, filterCapabilities, notInspected, ok, statusOf, type Status } from './responses.js';
import { refusalVerdict, runPayloadStep, type PayloadStep } from '../payload.js';
import { refusalResponse } from './outcome.js';
import { summarize } from '../summary.js';
import { RetrievalKeepalive } from './keepalive.js';
import { refuseOverMemoryBudget } from '../memory-budget.js';
import { UnknownCommands } from '../unknown-commands.js';
import { payloadSpool } from '../payload-spool.js';
import type { FlaggedMessage, QuarantineStore } from '../../quarantine/store.js';
import { connectTls, TlsVerifyError, type TlsSetup } from '../../tls/upgrade.js';
import { interceptDownstream, startPassthrough, type StartTlsMode } from '../../tls/starttls.js';

/** Upstream status and SASL challenge lines longer than this are a protocol error. */
const MAX_UPSTREAM_LINE_BYTES = 64 * 1024;
/** A CAPA response is held whole to be filtered; more than this is a protocol error. */
const MAX_CAPABILITY_BYTES = 64 * 1024;
/** The port a `USER name#host` login reaches when it names none (RFC 1939 3). */
const POP3_PORT = 110;
const CRLF = Buffer.from('\r\n', 'latin1');
const STLS_COMMAND = Buffer.from('STLS\r\n', 'latin1');

export interface Pop3SessionOptions {
  id: string;
  downstream: Socket;
  /** "address:port" of the downstream, for logs. */
  downstreamLabel: string;
  /** The listener's fixed upstream; undefined in `upstream: from-username` mode. */
  upstream: HostPort | undefined;
  /** In from-username mode: whether a login may reach this host and port. */
  allowUpstream: (host: string, port: number) => boolean;
  /** Opens an upstream connection; rejects when it cannot. */
  dial: (address: HostPort) => Promise<Socket>;
  inspect: boolean;
  inspector: Inspector;
  policy: Readonly<Policy>;
  spoolDir: string;
  logger: Logger;
  /** What STLS does on this listener. */
  starttls: StartTlsMode;
  /** 'implicit' when both legs are TLS from the first byte (the listener did the downstream handshake). */
  tls: 'none' | 'implicit';
  tlsSetup: TlsSetup;
  /** The name on our certificate when the downstream sends no SNI. */
  tlsName: string;
  /** Where originals of rewritten and refused retrievals go; undefined when quarantine.enabled is false. */
  quarantine: QuarantineStore | undefined;
}

export interface Pop3SessionEvents {
  retrieval: [RetrievalSummary];
  /** STLS was passed through: the rest of the session is spliced, uninspected. */
  passthrough: [];
  /** A retrieval was rewritten or refused (after its original was quarantined). */
  flagged: [FlaggedMessage];
  close: [];
}

/** Ends the session from deep inside a step; `last` is sent to the downstream first. */
class SessionEnd extends Error {
  constructor(
    readonly last: Buffer | undefined,
    readonly why: string,
  ) {
    super(why);
  }
}

interface UpstreamLeg {
  socket: Socket;
  reader: SocketReader;
  host: string;
  label: string;
}

/** The downstream owes the next command line (or AUTH response) within pop3.idle_seconds (RFC 1939 3 autologout). */
type DownstreamDeadline = 'idle';
/** The upstream owes its greeting, a status line, or the next chunk of a multi-line response. */
type UpstreamDeadline = 'greeting' | 'reply' | 'multiline';

/** Why the session ends when an upstream deadline passes (the log's reason). */
const UPSTREAM_TIMEOUT_REASONS: Record<UpstreamDeadline, string> = {
  greeting: 'upstream reply timeout',
  reply: 'upstream reply timeout',
  multiline: 'upstream timeout during a multi-line response',
};

type RetrievalOutcome = { verdict: RetrievalSummary['verdict']; reason?: string; size: number; quarantine?: string };

export class Pop3Session extends EventEmitter<Pop3SessionEvents> {
  private state: Pop3State = 'authorization';
  private upstream: UpstreamLeg | undefined;
  /** The downstream connection: the accepted socket, or the TLS socket over it after STLS. */
  private downstream: Socket;
  private downstreamReader: SocketReader;
  /** The only writer of the downstream: it owns the socket from a multi-line response's "+OK" to its dot. */
  private downstreamWriter: StuffedWriter;
  /** TLS on the downstream leg: none, implicit (port 995), or intercepted (after STLS). */
  private tls: RetrievalSummary['tls'];
  private readonly unknownCommands: UnknownCommands;
  private user = '';
  private closed = false;
  /** A command is being answered (drain waits for it). */
  private busy = false;
  /** Set by shutdown(): the session closes after the command in progress. */
  private draining = false;
  private readonly log: Logger;
  /** The downstream's deadline: armed only while a line is awaited from it. */
  private readonly downstreamDeadline = new PhaseTimer<DownstreamDeadline>(() =>
    this.downstreamReader.interrupt(new SessionEnd(POP3_RESPONSES.idleTimeout, 'downstream idle timeout')),
  );
  /** The upstream's deadline: armed only while a line or a chunk is awaited from it. */
  private readonly upstreamDeadline = new PhaseTimer<UpstreamDeadline>((kind) =>
    this.upstream?.reader.interrupt(new SessionEnd(POP3_RESPONSES.upstreamTimeout, UPSTREAM_TIMEOUT_REASONS[kind])),
  );
  /** Gate, inspection and quarantine of each captured retrieval (session/payload.ts). */
  private readonly payloadStep: PayloadStep;

  constructor(private readonly options: Pop3SessionOptions) {
    super();
    this.downstream = options.downstream;
    this.tls = options.tls;
    this.downstreamReader = new SocketReader(options.downstream, options.policy.limits.max_command_line_bytes);
    this.downstreamWriter = new StuffedWriter(options.downstream);
    this.unknownCommands = new UnknownCommands(options.policy.limits.max_unknown_commands);
    this.log = options.logger.child({ session: options.id });
    this.payloadStep = {
      policy: options.policy,
      log: this.log,
      inspector: options.inspect ? options.inspector : undefined,
      quarantine: options.quarantine,
      onFlagged: (message) => this.emit('flagged', message),
      refuseBareLineEndings: false,
      headerLimits: 'warn',
    };
  }

  /** Drain: an idle session is closed now, a busy one after the command in progress; the upstream gets no QUIT. */
  shutdown(): void {
    if (this.closed) return;
    this.draining = true;
    if (!this.busy) this.close(POP3_RESPONSES.shuttingDown);
  }

  /** The drain deadline passed: closed whatever it is doing (an unfinished RETR is never taken for a whole message). */
  terminate(): void {
    this.close(POP3_RESPONSES.shuttingDown);
  }

  start(): void {
    const downstream = this.downstream;
    downstream.setNoDelay(true);
    downstream.on('error', (error) => this.log.debug({ err: error }, 'downstream socket error'));
    this.log.debug({ downstream: this.options.downstreamLabel, protocol: 'pop3' }, 'session opened');
    this.run().catch((error: unknown) => {
      // run() handles its own failures; this is the last guard: the session ends, never the process.
      this.log.error({ err: error }, 'session failed');
      this.close(POP3_RESPONSES.internalError);
    });
  }

  private async run(): Promise<void> {
    try {
      await this.greet();
      while (!this.closed && (await this.step())) {
        if (this.draining) this.close(POP3_RESPONSES.shuttingDown);
      }
      if (!this.closed) this.closeQuietly('downstream closed the connection');
    } catch (error) {
      if (error instanceof SessionEnd) {
        this.log.info({ reason: error.why }, 'session closed by the proxy');
        return this.close(error.last);
      }
      throw error;
    }
  }

  // ---- greeting and upstream connection ------------------------------------------

  private async greet(): Promise<void> {
    const fixed = this.options.upstream;
    if (fixed === undefined) return this.sendDownstream([POP3_RESPONSES.greeting]);
    const greeting = await this.connectUpstream(fixed);
    // The greeting is relayed as it is: its APOP timestamp (RFC 1939 7) belongs to the upstream.
    await this.sendDownstream([greeting, CRLF]);
  }

  /** Dials, reads the greeting, and returns its line; any failure ends the session with -ERR [SYS/TEMP]. */
  private async connectUpstream(address: HostPort): Promise<Buffer> {
    const label = `${address.host}:${address.port}`;
    let socket: Socket;
    try {
      socket = await this.options.dial(address);
    } catch (error) {
      this.log.warn({ upstream: label, reason: (error as Error).message }, 'upstream connection failed');
      throw new SessionEnd(POP3_RESPONSES.upstreamUnreachable, 'upstream unreachable');
    }
    if (this.closed) {
      socket.destroy();
      throw new SessionEnd(undefined, 'downstream left while the upstream was dialled');
    }
    socket.setNoDelay(true);
    socket.on('error', (error) => this.log.debug({ err: error }, 'upstream socket error'));
    this.upstream = { socket, reader: new SocketReader(socket, MAX_UPSTREAM_LINE_BYTES), host: address.host, label };
    const greeting = await this.readUpstreamLine('greeting');
    if (statusOf(greeting) !== 'ok') {
      this.log.warn({ upstream: label, greeting: greeting.toString('latin1').slice(0, 200) }, 'upstream refused the session');
      throw new SessionEnd(POP3_RESPONSES.upstreamUnreachable, 'upstream greeting was not +OK');
    }
    return greeting;
  }

  // ---- one command ---------------------------------------------------------------

  /** Reads and answers one downstream command; false when the downstream is gone or said QUIT. */
  private async step(): Promise<boolean> {
    const event = await this.readDownstreamLine();
    if (event === CLOSED) return false;
    this.busy = true;
    try {
      return await this.answer(event);
    } finally {
      this.busy = false;
    }
  }

  private async answer(event: LineEvent): Promise<boolean> {
    if (event.kind === 'overflow') {
      await this.countUnknown();
      await this.sendDownstream([POP3_RESPONSES.lineTooLong]);
      return true;
    }
    const parsed = parseCommand(event.line);
    if (parsed.kind !== 'command') {
      await this.countUnknown();
      await this.sendDownstream([parsed.kind === 'invalid' ? POP3_RESPONSES.invalidCommand : POP3_RESPONSES.unknownCommand]);
      return true;
    }
    this.log.debug({ command: parsed.verb, ...(parsed.spec.logArgument ? { argument: parsed.argument } : {}) }, 'command');
    if (!parsed.spec.states.includes(this.state)) {
      await this.sendDownstream([POP3_RESPONSES.wrongState]);
      return true;
    }
    if (this.upstream === undefined) return this.beforeUpstream(parsed);
    switch (parsed.spec.role) {
      case 'stls':
        return this.startTls(parsed);
      case 'user':
        if (this.options.upstream === undefined) return this.proxyLogin(parsed);
        this.user = parsed.argument;
        await this.relay(parsed);
        return true;
      case 'login':
        if (parsed.verb === 'APOP') this.user = parsed.argument.split(' ')[0] ?? '';
        if ((await this.relay(parsed)) === 'ok') this.enterTransaction();
        return true;
      case 'auth':
        await this.authenticate(parsed);
        return true;
      case 'capa':
        await this.capabilities(parsed);
        return true;
      case 'retrieve':
        await this.retrieve(parsed);
        return true;
      case 'quit':
        await this.relay(parsed);
        this.closeGracefully();
        return false;
      case 'forward':
        await this.relay(parsed);
        return true;
    }
  }

  /** `upstream: from-username` before a USER chose the server: only CAPA, USER and QUIT make sense. */
  private async beforeUpstream(command: Extract<ParsedCommand, { kind: 'command' }>): Promise<boolean> {
    switch (command.spec.role) {
      case 'capa':
        await this.sendDownstream([this.options.starttls === 'intercept' && this.tls === 'none' ? POP3_RESPONSES.capabilitiesWithStls : POP3_RESPONSES.capabilities]);
        return true;
      case 'user':
        return this.proxyLogin(command);
      case 'quit':
        await this.sendDownstream([POP3_RESPONSES.goodbye]);
        this.closeGracefully();
        return false;
      case 'stls':
        // No upstream yet: mailmoat answers STLS itself; the upstream leg gets TLS once USER names it.
        if (this.options.starttls !== 'intercept' || this.tls !== 'none') {
          await this.sendDownstream([this.tls === 'none' ? POP3_RESPONSES.tlsNotAvailable : POP3_RESPONSES.tlsAlreadyActive]);
          return true;
        }
        await this.sendDownstream([POP3_RESPONSES.beginTls]);
        await this.upgradeDownstream();
        return true;
      default:
        await this.sendDownstream([POP3_RESPONSES.needProxyLogin]);
        return true;
    }
  }

  /** `USER alice#pop.example.com[:port]`: dial the named server (if allowed) and log in there as alice. */
  private async proxyLogin(command: Extract<ParsedCommand, { kind: 'command' }>): Promise<boolean> {
    const login = parseProxyLogin(command.argument);
    if (login === undefined) {
      await this.sendDownstream([POP3_RESPONSES.badProxyLogin]);
      return true;
    }
    const port = login.port ?? POP3_PORT;
    if (!this.options.allowUpstream(login.host, port)) {
      this.log.warn({ host: login.host, port }, 'login names an upstream outside pop3.upstream_hosts');
      await this.sendDownstream([POP3_RESPONSES.upstreamNotAllowed]);
      return true;
    }
    // A second USER may name another server: the first connection is left without QUIT (nothing was marked there).
    this.upstream?.socket.destroy();
    this.upstream = undefined;
    await this.connectUpstream({ host: login.host, port });
    // A client that is already on TLS with us must not have its password sent in the clear.
    if (this.tls === 'intercepted') {
      const answer = await this.requestUpstream(STLS_COMMAND);
      if (answer.status !== 'ok') throw new SessionEnd(POP3_RESPONSES.upstreamNoTls, 'the upstream refused STLS');
      await this.upgradeUpstream();
    }
    this.user = login.user;
    const wire = Buffer.from(`USER ${login.user}\r\n`, 'latin1');
    await this.relayWire(wire, false);
    return true;
  }

  private enterTransaction(): void {
    this.state = 'transaction';
    this.log.info({ user: this.user, upstream: this.upstream?.label }, 'logged in');
  }

  // ---- relaying --------------------------------------------------------------------

  /** Sends the command upstream and relays its response (multi-line when its spec says so). */
  private relay(command: Extract<ParsedCommand, { kind: 'command' }>): Promise<Status> {
    return this.relayWire(Buffer.concat([command.line, CRLF]), command.spec.multiline(command.argument));
  }

  private async relayWire(wire: Buffer, multiline: boolean): Promise<Status> {
    const status = await this.requestUpstream(wire);
    if (status.status !== 'ok' || !multiline) {
      await this.sendDownstream([status.line, CRLF]);
      return status.status;
    }
    await this.relayMultiline(status.line);
    return 'ok';
  }

  /** CAPA: the list is held whole and filtered (filterCapabilities) before it is relayed. */
  private async capabilities(command: Extract<ParsedCommand, { kind: 'command' }>): Promise<void> {
    const status = await this.requestUpstream(Buffer.concat([command.line, CRLF]));
    if (status.status !== 'ok') return this.sendDownstream([status.line, CRLF]);
    const content: Buffer[] = [];
    let size = 0;
    await this.readMultiline((pieces) => {
      for (const piece of pieces) {
        size += piece.length;
        if (size > MAX_CAPABILITY_BYTES) throw new SessionEnd(POP3_RESPONSES.upstreamProtocolError, 'CAPA response too long');
        content.push(piece);
      }
    });
    const lines = Buffer.concat(content).toString('latin1').split('\r\n').filter((line) => line !== '').map((line) => Buffer.from(line, 'latin1'));
    const kept = filterCapabilities(lines, this.tls === 'none' && this.options.starttls !== 'strip');
    await this.sendDownstream([status.line, CRLF, ...kept.flatMap((line) => [line, CRLF]), END_OF_DATA]);
  }

  /** AUTH (RFC 5034): challenges and responses are relayed line by line, and never logged. */
  private async authenticate(command: Extract<ParsedCommand, { kind: 'command' }>): Promise<void> {
    if (command.spec.multiline(command.argument)) {
      await this.relay(command);
      return;
    }
    let status = await this.requestUpstream(Buffer.concat([command.line, CRLF]));
    while (status.status === 'continue') {
      await this.sendDownstream([status.line, CRLF]);
      const response = await this.readDownstreamLine();
      if (response === CLOSED) throw new SessionEnd(undefined, 'downstream closed the connection during AUTH');
      // An over-long response cancels the exchange ("*", RFC 5034 4); the upstream's -ERR is the answer.
      const line = response.kind === 'line' ? response.line : Buffer.from('*', 'latin1');
      status = await this.requestUpstream(Buffer.concat([line, CRLF]));
    }
    await this.sendDownstream([status.line, CRLF]);
    if (status.status === 'ok') this.enterTransaction();
  }

  // ---- STLS (RFC 2595) ---------------------------------------------------------------

  /** STLS with an upstream: refused, relayed and spliced, or intercepted. False when the session is spliced. */
  private async startTls(command: Extract<ParsedCommand, { kind: 'command' }>): Promise<boolean> {
    if (this.tls !== 'none') {
      await this.sendDownstream([POP3_RESPONSES.tlsAlreadyActive]);
      return true;
    }
    if (this.options.starttls === 'strip') {
      await this.sendDownstream([POP3_RESPONSES.tlsNotAvailable]);
      return true;
    }
    const answer = await this.requestUpstream(Buffer.concat([command.line, CRLF]));
    if (answer.status !== 'ok') {
      await this.sendDownstream([answer.line, CRLF]);
      return true;
    }
    if (this.options.starttls === 'passthrough') {
      await this.sendDownstream([answer.line, CRLF]);
      this.passThrough();
      return false;
    }
    await this.upgradeUpstream();
    await this.sendDownstream([POP3_RESPONSES.beginTls]);
    await this.upgradeDownstream();
    return true;
  }

  /** The upstream leg becomes a verified TLS client; a certificate that does not verify ends the session. */
  private async upgradeUpstream(): Promise<void> {
    const upstream = this.upstream;
    if (upstream === undefined) throw new SessionEnd(POP3_RESPONSES.upstreamLost, 'upstream lost');
    upstream.reader.detach();
    try {
      const secure = await connectTls(upstream.socket, upstream.host, this.options.tlsSetup, this.options.policy.tls.handshake_seconds);
      secure.on('error', (error) => this.log.debug({ err: error }, 'upstream socket error'));
      this.upstream = { ...upstream, socket: secure, reader: new SocketReader(secure, MAX_UPSTREAM_LINE_BYTES) };
      this.log.debug({ upstream: upstream.label, protocol: secure.getProtocol(), authorized: secure.authorized }, 'upstream TLS established');
    } catch (error) {
      if (error instanceof TlsVerifyError) {
        this.log.warn({ upstream: upstream.label, reason: error.reason }, 'upstream certificate not trusted: session refused');
        throw new SessionEnd(POP3_RESPONSES.upstreamUntrusted, 'upstream certificate not trusted');
      }
      throw new SessionEnd(POP3_RESPONSES.upstreamTlsFailed, `upstream TLS failed: ${(error as Error).message}`);
    }
  }

  /** The downstream leg becomes a TLS server with a leaf from our CA; plaintext sent behind STLS is dropped. */
  private async upgradeDownstream(): Promise<void> {
    const { tlsSetup, tlsName, policy } = this.options;
    const legs = { command: 'STLS', downstream: this.downstream, downstreamUnread: this.downstreamReader.detach(), log: this.log } as const;
    let secure: Socket;
    try {
      secure = await interceptDownstream({ ...legs, tlsSetup, tlsName, handshakeSeconds: policy.tls.handshake_seconds }, () => undefined);
    } catch (error) {
      throw new SessionEnd(undefined, `downstream TLS handshake failed: ${(error as Error).message}`);
    }
    secure.on('error', (error) => this.log.debug({ err: error }, 'downstream socket error'));
    this.downstream = secure;
    this.downstreamReader = new SocketReader(secure, this.options.policy.limits.max_command_line_bytes);
    this.downstreamWriter = new StuffedWriter(secure);
    this.tls = 'intercepted';
    this.log.debug('STLS intercepted');
  }

  /** Passthrough: after the upstream's +OK the legs are joined; nothing after this is read or inspected. */
  private passThrough(): void {
    const downstream = this.downstream;
    const upstream = this.upstream;
    if (upstream === undefined) return;
    const legs = { command: 'STLS', downstream, downstreamUnread: this.downstreamReader.detach(), log: this.log } as const;
    upstream.reader.detach();
    startPassthrough(
      { ...legs, upstream: upstream.socket, upstreamLabel: upstream.label, idleSeconds: this.options.policy.pop3.idle_seconds },
      {
        release: () => {
          this.closed = true;
        },
        onPassthrough: () => this.emit('passthrough'),
        onClose: () => this.emit('close'),
      },
    );
  }

  // ---- RETR and TOP ----------------------------------------------------------------

  private async retrieve(command: Extract<ParsedCommand, { kind: 'command' }>): Promise<void> {
    const startedAt = performance.now();
    const message = command.argument.split(' ')[0] ?? '';
    if (this.options.inspect && refuseOverMemoryBudget(this.options.policy.limits.max_process_memory_bytes, this.log, 'retrieval')) {
      return this.sendDownstream([notInspected(message, 'the proxy is short of memory')]);
    }
    const status = await this.requestUpstream(Buffer.concat([command.line, CRLF]));
    if (status.status !== 'ok') return this.sendDownstream([status.line, CRLF]);
    const report = (outcome: RetrievalOutcome, keptAlive: boolean): void =>
      this.report({ command: command.verb, message, startedAt, keptAlive, ...outcome });
    if (!this.options.inspect) {
      let size = 0;
      await this.relayMultiline(status.line, (content) => {
        for (const piece of content) size += piece.length;
      });
      return report({ verdict: 'pass', size }, false);
    }
    const spool = payloadSpool(this.options.spoolDir, this.options.policy);
    const keepalive = new RetrievalKeepalive(this.downstreamWriter, this.options.policy.pop3.keepalive_seconds);
    try {
      const outcome = await this.captureAndAnswer(command, message, status.line, spool, keepalive);
      report(outcome, keepalive.committed);
    } catch (error) {
      if (!(error instanceof SessionEnd)) throw error;
      report({ verdict: 'aborted', reason: error.why, size: spool.size }, keepalive.committed);
      // After "+OK" went out, a -ERR would be read as message text: the connection is cut instead.
      throw keepalive.committed ? new SessionEnd(undefined, error.why) : error;
    } finally {
      keepalive.stop();
      await spool.dispose();
    }
  }

  private async captureAndAnswer(
    command: Extract<ParsedCommand, { kind: 'command' }>,
    message: string,
    statusLine: Buffer,
    spool: Spool,
    keepalive: RetrievalKeepalive,
  ): Promise<RetrievalOutcome> {
    const limit = this.options.policy.limits.max_message_bytes;
    let size = 0;
    await this.readMultiline(async (content) => {
      for (const piece of content) {
        size += piece.length;
        // Over the limit the rest is read and dropped, so the session stays in step with the upstream.
        if (size <= limit && !spool.write(piece)) await spool.drained();
      }
    });
    const recipients = this.user.includes('@') ? [this.user] : [];
    const outcome = await runPayloadStep(this.payloadStep, {
      spool,
      size,
      bareLineEndings: 0,
      context: { sessionId: this.options.id, direction: 'inbound', sender: '', recipients, partial: command.verb === 'TOP' },
      record: { session: this.options.id, protocol: 'pop3', direction: 'inbound', sender: '', recipients, user: `${this.user} (${command.verb} ${message})` },
    });
    const kept = outcome.quarantine === undefined ? {} : { quarantine: outcome.quarantine };
    if (outcome.kind !== 'forward') {
      return this.refuse(keepalive, refusalResponse(outcome, message, limit), { verdict: refusalVerdict(outcome), reason: outcome.reason, size, ...kept });
    }
    // A POP3 proxy cannot refuse a message with too many header lines: it is delivered with a warning on top.
    const warning = outcome.headerWarning === undefined ? [] : [Buffer.from(`X-Mailmoat-Warning: ${outcome.headerWarning.text}\r\n`, 'latin1')];
    const extra = warning.reduce((sum, line) => sum + line.length, 0);
    keepalive.stop();
    try {
      // A clean message keeps the upstream's own status line unless a warning or an annotation changes its size.
      const status = outcome.verdict === 'pass' && warning.length === 0 && outcome.source === spool ? [statusLine, CRLF] : [ok(`${outcome.source.size + extra} octets`)];
      await this.sendMessage(keepalive.writer, [...(keepalive.committed ? [] : status), ...warning], outcome.source);
    } finally {
      await outcome.release();
    }
    if (outcome.verdict === 'rewrite') return { verdict: 'rewrite', reason: outcome.reason ?? '', size, ...kept };
    const warned = outcome.headerWarning === undefined ? {} : { reason: `${outcome.headerWarning.kind === 'too-large' ? 'header block too large' : 'too many header lines'}: delivered with a warning` };
    return { verdict: 'pass', size, ...warned };
  }

  /** A retrieval the proxy will not hand over: -ERR, or, once "+OK" was committed, the cut (no final dot). */
  private async refuse(keepalive: RetrievalKeepalive, response: Buffer, outcome: RetrievalOutcome): Promise<RetrievalOutcome> {
    keepalive.stop();
    if (keepalive.committed) throw new SessionEnd(undefined, `${outcome.reason ?? outcome.verdict} after the response was committed`);
    await this.sendDownstream([response]);
    return outcome;
  }

  /** The status line (unless already committed), the re-stuffed message and the final dot. */
  /** The status (unless committed), the message re-stuffed, the dot: the writer owns the downstream meanwhile. */
  private async sendMessage(writer: StuffedWriter, head: Buffer[], source: MessageSource): Promise<void> {
    try {
      await writer.begin(head).send(source);
    } catch (error) {
      if (writer.socket.destroyed || !writer.socket.writable) throw new SessionEnd(undefined, 'downstream connection lost');
      throw error;
    }
  }

  private report(outcome: RetrievalOutcome & { command: string; message: string; startedAt: number; keptAlive: boolean }): void {
    const { command, message, keptAlive, ...result } = outcome;
    const summary: RetrievalSummary = summarize(
      { session: this.options.id, downstream: this.options.downstreamLabel, upstream: this.upstream?.label ?? '', tls: this.tls, inspected: this.options.inspect },
      { user: this.user, command, message, keptAlive },
      result,
    );
    // The summary names its session: the session-less logger writes it (no key twice, no per-line de-duplication).
    this.options.logger.info(summary, 'retrieval');
    this.emit('retrieval', summary);
  }

  // ---- the two legs ------------------------------------------------------------------

  /**
   * The deadlines, set in one place: each read arms its leg's deadline once, so a whole line
   * must arrive in time (a trickle of bytes does not extend it) and each chunk of a
   * multi-line response restarts it. A deadline that passes interrupts the read with a SessionEnd.
   */
  private armDeadline(kind: DownstreamDeadline | UpstreamDeadline): void {
    const { pop3, timeouts } = this.options.policy;
    switch (kind) {
      case 'idle':
        return this.downstreamDeadline.set(kind, pop3.idle_seconds);
      case 'greeting':
        return this.upstreamDeadline.set(kind, timeouts.greeting_seconds);
      case 'reply':
      case 'multiline':
        return this.upstreamDeadline.set(kind, timeouts.upstream_reply_seconds);
    }
  }

  private async readDownstreamLine(): Promise<Awaited<ReturnType<SocketReader['nextLine']>>> {
    this.armDeadline('idle');
    try {
      return await this.downstreamReader.nextLine();
    } finally {
      this.downstreamDeadline.clear();
    }
  }

  /** Sends one command (or SASL line) upstream and reads its status line. */
  private async requestUpstream(wire: Buffer): Promise<{ status: Status; line: Buffer }> {
    const upstream = this.upstream;
    if (upstream === undefined || upstream.socket.destroyed) throw new SessionEnd(POP3_RESPONSES.upstreamLost, 'upstream lost');
    try {
      await writeAll(upstream.socket, [wire]);
    } catch {
      throw new SessionEnd(POP3_RESPONSES.upstreamLost, 'upstream lost');
    }
    const line = await this.readUpstreamLine('reply');
    const status = statusOf(line);
    if (status === undefined) throw new SessionEnd(POP3_RESPONSES.upstreamProtocolError, 'upstream response without +OK or -ERR');
    return { status, line };
  }

  private async readUpstreamLine(kind: 'greeting' | 'reply'): Promise<Buffer> {
    const upstream = this.upstream;
    if (upstream === undefined) throw new SessionEnd(POP3_RESPONSES.upstreamLost, 'upstream lost');
    this.armDeadline(kind);
    let event;
    try {
      event = await upstream.reader.nextLine();
    } finally {
      this.upstreamDeadline.clear();
    }
    if (event === CLOSED) throw new SessionEnd(POP3_RESPONSES.upstreamLost, 'upstream lost');
    if (event.kind === 'overflow') throw new SessionEnd(POP3_RESPONSES.upstreamProtocolError, 'upstream line too long');
    return event.line;
  }

  /** Reads a multi-line body up to CRLF.CRLF and hands its unstuffed content to `sink`, chunk by chunk. */
  private async readMultiline(sink: (content: Buffer[]) => Promise<void> | void): Promise<void> {
    const upstream = this.upstream;
    if (upstream === undefined) throw new SessionEnd(POP3_RESPONSES.upstreamLost, 'upstream lost');
    const decoder = new DataDecoder();
    try {
      for (;;) {
        this.armDeadline('multiline');
        const chunk = await upstream.reader.nextChunk();
        if (chunk === CLOSED) throw new SessionEnd(POP3_RESPONSES.upstreamLost, 'upstream lost during a multi-line response');
        const decoded = decoder.decode(chunk);
        if (decoded.content.length > 0) await sink(decoded.content);
        if (decoded.ended) {
          upstream.reader.unread(decoded.rest);
          return;
        }
      }
    } finally {
      this.upstreamDeadline.clear();
    }
  }

  /**
   * A multi-line response relayed uninspected as it arrives: the status line, the content
   * re-stuffed (`observe` sees each batch first), the dot. The writer owns the downstream meanwhile.
   */
  private async relayMultiline(statusLine: Buffer, observe?: (content: readonly Buffer[]) => void): Promise<void> {
    const writer = this.downstreamWriter;
    if (writer.socket.destroyed || !writer.socket.writable) throw new SessionEnd(undefined, 'downstream connection lost');
    try {
      const lease = writer.begin([statusLine, CRLF]);
      await lease.relay((write) =>
        this.readMultiline((content) => {
          observe?.(content);
          return write(content);
        }),
      );
    } catch (error) {
      if (!(error instanceof SessionEnd) && (writer.socket.destroyed || !writer.socket.writable)) throw new SessionEnd(undefined, 'downstream connection lost');
      throw error;
    }
  }

  private async sendDownstream(pieces: readonly Buffer[]): Promise<void> {
    // A payload in flight owns the downstream: writing beside it would be a bug.
    if (this.downstreamWriter.streaming) throw new WriterBusyError();
    const downstream = this.downstream;
    try {
      await writeAll(downstream, pieces);
    } catch {
      throw new SessionEnd(undefined, 'downstream connection lost');
    }
  }

  private async countUnknown(): Promise<void> {
    if (this.unknownCommands.record()) throw new SessionEnd(POP3_RESPONSES.tooManyUnknown, 'too many unknown commands');
  }

  // ---- closing -----------------------------------------------------------------------

  /** After QUIT was relayed: both legs end politely (the upstream already got QUIT). */
  private closeGracefully(): void {
    this.upstream?.socket.end();
    this.downstream.end();
    this.finalize();
  }

  /** The proxy ends the session: a last response (if any), and the upstream is cut without QUIT. */
  private close(last: Buffer | undefined): void {
    if (this.closed) return;
    const downstream = this.downstream;
    if (last !== undefined && !downstream.destroyed && downstream.writable) downstream.end(last);
    else downstream.destroy();
    this.upstream?.socket.destroy();
    this.finalize();
  }

  private closeQuietly(why: string): void {
    this.log.debug({ reason: why }, 'session closed');
    this.upstream?.socket.destroy();
    this.downstream.destroy();
    this.finalize();
  }

  private finalize(): void {
    this.downstreamDeadline.clear();
    this.upstreamDeadline.clear();
    if (this.closed) return;
    this.closed = true;
    destroyAfterLinger(this.downstream);
    this.emit('close');
  }
}
