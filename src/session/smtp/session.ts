/**
 * One SMTP relay session: a downstream connection, its own upstream connection,
 * and the state machine between them.
 *
 * RFC 5321 (commands, replies, DATA, timeouts 4.5.3.2), RFC 2920 (pipelining:
 * commands relayed in order, replies paired through a FIFO), RFC 1870 (SIZE),
 * RFC 4954 (AUTH continuation lines relayed, never logged), RFC 3207 (STARTTLS
 * per the listener's policy: refused, relayed and spliced uninspected, or
 * intercepted: both legs upgraded, plaintext sent behind the command discarded,
 * the session starts over with EHLO).
 *
 * Invariants:
 *  - State changes on the upstream's positive reply (a recipient exists once the
 *    upstream said 250 to it), never on the downstream's command alone.
 *  - DATA: the proxy answers 354 once the upstream accepted a sender and at least
 *    one recipient, captures the payload into a spool until CRLF.CRLF, has it
 *    inspected, and only then sends DATA, the re-stuffed payload and the final
 *    dot upstream. While it captures and inspects, the upstream leg idles in a
 *    clean state (kept alive by NOOP), so a refusal costs only an RSET there, and
 *    a downstream that disappears mid-DATA never causes a final dot upstream.
 *  - The downstream gets 250 only as the relay of the upstream's own reply to the
 *    final dot; every failure before that gives it a 4xx.
 *  - Nothing is written past `write() === false`: the downstream is paused until
 *    the upstream, the spool or the downstream itself drains.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { REPLIES, ProxyError, reply as makeReply, type Reply } from '../../errors.js';
import type { Direction, Inspector, MessageSource } from '../../inspect/api.js';
import type { Policy } from '../../config/schema.js';
import type { Logger, TransactionSummary } from '../../observe/log.js';
import type { Spool } from '../../capture/spool.js';
import { recognisable, type LargeMessageMemory } from '../../capture/large-messages.js';
import { LineReader, type LineEvent } from '../../wire/line-reader.js';
import { DataDecoder } from '../../wire/dot-codec.js';
import { destroyAfterLinger } from '../../wire/socket-write.js';
import { StuffedWriter } from '../../wire/stuffed-writer.js';
import { ReplyParser, filterEhloReply, serializeReply } from './replies.js';
import { upstreamEnd, type Closing, type CloseHow } from './closing.js';
import { accepted, asRefusal, COMMANDS, declaredSize, inGroup, OWN_REQUESTS, parseCommand, pathOf, type ParsedCommand, type Phase, type Relay } from './commands.js';
import { ReplySlots, UpstreamWaits, type WaitKind } from './pipeline.js';
import { PhaseTimer } from '../timers.js';
import { refuseOverMemoryBudget } from '../memory-budget.js';
import { UnknownCommands } from '../unknown-commands.js';
import { payloadSpool } from '../payload-spool.js';
import type { FlaggedMessage, QuarantineStore } from '../../quarantine/store.js';
import { refusalVerdict, runPayloadStep, type PayloadStep } from '../payload.js';
import { refusalReply } from './outcome.js';
import { summarize } from '../summary.js';
import { connectTls, TlsVerifyError, type TlsSetup } from '../../tls/upgrade.js';
import { interceptDownstream, startPassthrough, type StartTlsMode } from '../../tls/starttls.js';
import { ForwardedClient, offerXforward, offeredAttributes, parseXforward, relayedCommand, type XforwardAttribute, type XforwardTrust } from './xforward.js';

/** A trusted peer's XFORWARD relayed upstream: accepted on 2xx, nothing else learnt there (xforward.ts holds it). */
const XFORWARD_RELAY: Relay = { kind: 'forward', expect: 2, onAccepted: 'nothing' };
/** Upstream reply lines longer than this are a protocol error (RFC 5321 allows 512). */
const MAX_UPSTREAM_LINE_BYTES = 4096;
const CRLF = Buffer.from('\r\n', 'latin1');
/** Bytes a downstream may pipeline behind its final dot before reading pauses until the final reply. */
const MAX_BUFFERED_WHILE_BUSY_BYTES = 64 * 1024;
/** The window over which limits.min_data_bytes_per_second is measured. */
const RATE_WINDOW_MS = 30_000;

export interface SmtpSessionOptions {
  id: string;
  downstream: Socket;
  /** "address:port" of the downstream, for logs. */
  downstreamLabel: string;
  /** The downstream's address (after a PROXY header): Large Message Safety remembers its network. */
  downstreamAddress: string;
  /** Opens the upstream leg; rejects with a ProxyError carrying the downstream's reply. */
  connectUpstream: () => Promise<Socket>;
  upstreamLabel: string;
  direction: Direction;
  inspect: boolean;
  inspector: Inspector;
  policy: Readonly<Policy>;
  spoolDir: string;
  logger: Logger;
  /** What STARTTLS does on this listener. */
  starttls: StartTlsMode;
  /** 'implicit' when both legs are TLS from the first byte (the listener did the downstream handshake). */
  tls: 'none' | 'implicit';
  tlsSetup: TlsSetup;
  /** The name on our certificate when the downstream sends no SNI. */
  tlsName: string;
  /** The name the upstream's certificate must carry. */
  upstreamHost: string;
  /** Where originals of rewritten and refused messages go; undefined when quarantine.enabled is false. */
  quarantine: QuarantineStore | undefined;
  /** Large Message Safety, when limits.large_message.abort_over is set. */
  largeMessages: LargeMessageSafety | undefined;
  /** Set when the downstream is a peer in smtp.xforward_from: its XFORWARD is believed. */
  xforward: XforwardTrust | undefined;
}

export interface LargeMessageSafety {
  memory: LargeMessageMemory;
  abortOverBytes: number;
  /** Whether an envelope sender is exempt (limits.large_message.exceptions). */
  exempt(sender: string): boolean;
}

export interface SmtpSessionEvents {
  transaction: [TransactionSummary];
  /** STARTTLS was passed through: the rest of the session is spliced, uninspected. */
  passthrough: [];
  /** A message was rewritten or refused (after its original was quarantined). */
  flagged: [FlaggedMessage];
  close: [];
}

interface SocketHandlers {
  data: (chunk: Buffer) => void;
  end: () => void;
  drain: () => void;
  error: (error: Error) => void;
  close: () => void;
}

type DownstreamDeadline = 'command' | 'data';

type PauseReason = 'upstream-drain' | 'downstream-drain' | 'spool-drain' | 'busy';

interface Transaction {
  helo: string;
  sender: string | undefined;
  recipients: string[];
  /** MAIL FROM SIZE= (RFC 1870), when declared. */
  declaredSize: number | undefined;
}

interface Capture {
  spool: Spool;
  decoder: DataDecoder;
  size: number;
  tooBig: boolean;
  startedAt: number;
  /** The quarantine entry holding the original, once it is stored. */
  quarantined?: string;
  /** Bytes received in the current rate window (limits.min_data_bytes_per_second). */
  windowBytes: number;
}

export class SmtpSession extends EventEmitter<SmtpSessionEvents> {
  private phase: Phase = 'connecting';
  private upstream: Socket | undefined;
  /** The only writer of the upstream socket: it owns the socket while a message streams. */
  private upstreamWriter: StuffedWriter | undefined;
  private upstreamAlive = false;
  private readonly commandLines: LineReader;
  private readonly upstreamLines = new LineReader(MAX_UPSTREAM_LINE_BYTES);
  private readonly replyParser = new ReplyParser();
  private readonly waits = new UpstreamWaits();
  private readonly slots = new ReplySlots();
  private readonly paused = new Set<PauseReason>();
  private readonly transaction: Transaction = { helo: '', sender: undefined, recipients: [], declaredSize: undefined };
  private capture: Capture | undefined;
  private readPaused = false;
  private processing = false;
  private upstreamCorked = false;
  private readonly unknownCommands: UnknownCommands;
  private downstreamEnded = false;
  private quitting = false;
  /** The downstream's deadline: the next command line, or the next DATA bytes. */
  private readonly downstreamDeadline = new PhaseTimer<DownstreamDeadline>((kind) => this.guard(this.onDownstreamDeadline, kind));
  /** The upstream's deadline: the reply owed to the oldest wait. */
  private readonly upstreamDeadline = new PhaseTimer<WaitKind>((kind) => this.guard(this.onUpstreamDeadline, kind));
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private rateTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly downstreamLabel: string;
  /** The downstream connection: the accepted socket, or the TLS socket over it after STARTTLS. */
  private downstream: Socket;
  /** TLS on the downstream leg: none, implicit (from the listener), or intercepted (after STARTTLS). */
  private tls: TransactionSummary['tls'];
  /** Whether the upstream's last EHLO reply offered STARTTLS. */
  private upstreamOffersStartTls = false;
  /** Set by shutdown(): the session closes after the transaction in progress. */
  private draining = false;
  /** The client a trusted peer forwarded for the current transaction (XFORWARD). */
  private readonly forwarded = new ForwardedClient();
  /** The forwarded client's hold on its per-address limits, released when its transaction ends. */
  private releaseForwarded: (() => void) | undefined;
  /** The XFORWARD attributes the upstream's last EHLO reply offered. */
  private upstreamXforward: ReadonlySet<XforwardAttribute> = new Set();
  /** Gate, inspection and quarantine of each captured message (session/payload.ts), inspected or not. */
  private readonly payloadSteps: Record<'inspected' | 'uninspected', PayloadStep>;
  private readonly downstreamHandlers: SocketHandlers = {
    data: (chunk: Buffer) => this.guard(this.onDownstreamData, chunk),
    end: () => this.guard(this.onDownstreamEnd),
    drain: () => this.resume('downstream-drain'),
    error: (error: Error) => this.log.debug({ err: error }, 'downstream socket error'),
    close: () => this.guard(this.onDownstreamClose),
  };
  private readonly upstreamHandlers: SocketHandlers = {
    data: (chunk: Buffer) => this.guard(this.onUpstreamData, chunk),
    drain: () => this.resume('upstream-drain'),
    error: (error: Error) => this.log.debug({ err: error }, 'upstream socket error'),
    end: () => this.guard(this.onUpstreamLost, REPLIES.upstreamLost),
    close: () => {
      this.log.debug({ upstream: this.options.upstreamLabel }, 'upstream connection closed');
      this.guard(this.onUpstreamLost, REPLIES.upstreamLost);
    },
  };

  constructor(private readonly options: SmtpSessionOptions) {
    super();
    this.commandLines = new LineReader(options.policy.limits.max_command_line_bytes);
    this.unknownCommands = new UnknownCommands(options.policy.limits.max_unknown_commands);
    this.downstreamLabel = options.downstreamLabel;
    this.log = options.logger.child({ session: options.id });
    this.downstream = options.downstream;
    this.tls = options.tls;
    const inspected: PayloadStep = {
      policy: options.policy,
      log: this.log,
      inspector: options.inspector,
      quarantine: options.quarantine,
      onFlagged: (message) => this.emit('flagged', message),
      refuseBareLineEndings: options.policy.smtp.bare_line_endings === 'reject',
      headerLimits: 'refuse',
    };
    this.payloadSteps = { inspected, uninspected: { ...inspected, inspector: undefined } };
  }

  /** Drain: an idle session is closed with 421 now, one in a transaction right after its final reply. */
  shutdown(): void {
    if (this.phase === 'closed') return;
    this.draining = true;
    if (inGroup(this.phase, 'transaction')) return;
    this.close({ how: 'reply-now', last: REPLIES.shuttingDown });
  }

  /** The drain deadline passed: closed with 421 whatever it is doing (a message in DATA is not delivered: the sender retries). */
  terminate(): void {
    this.close({ how: 'reply-now', last: REPLIES.shuttingDown });
  }

  start(): void {
    this.downstream.setNoDelay(true);
    bind(this.downstream, this.downstreamHandlers);
    // Flowing even when an earlier reader (the PROXY protocol header) left the socket paused.
    this.downstream.resume();
    this.log.debug({ downstream: this.downstreamLabel, direction: this.options.direction }, 'session opened');
    this.options.connectUpstream().then(
      (socket) => this.guard(this.onUpstreamConnected, socket),
      (error: unknown) => {
        const failure = error instanceof ProxyError ? error : new ProxyError('MM_UPSTREAM_CONNECT', REPLIES.upstreamUnreachable, { cause: error });
        this.log.warn({ upstream: this.options.upstreamLabel, reason: failure.message }, 'upstream connection failed');
        this.close({ how: 'reply-now', last: failure.reply });
      },
    );
  }

  /** Runs a socket event handler; an unexpected exception ends this session, never the process. */
  private guard<A extends unknown[]>(handler: (...args: A) => void, ...args: A): void {
    try {
      handler.apply(this, args);
    } catch (error) {
      this.log.error({ err: error }, 'session failed');
      this.close({ how: 'reply-now', last: REPLIES.internalError });
    }
  }

  // ---- upstream leg ----------------------------------------------------------

  private onUpstreamConnected(socket: Socket): void {
    if (this.phase === 'closed') {
      socket.destroy();
      return;
    }
    this.upstream = socket;
    this.upstreamWriter = new StuffedWriter(socket);
    this.upstreamAlive = true;
    socket.setNoDelay(true);
    bind(socket, this.upstreamHandlers);
    this.phase = 'greeting';
    this.expectUpstream('greeting', (greeting) => {
      // A 421 greeting (RFC 5321 3.1) means the upstream is closing: relay it and close too.
      if (greeting.code === 421) return this.close({ how: 'reply-now', last: greeting });
      this.slots.add({ reply: greeting, after: () => this.enterCommandPhase() });
      this.flushReplies();
    });
  }

  private onUpstreamData(chunk: Buffer): void {
    // After the session closed nothing the upstream says matters (the 221 to our own QUIT).
    if (this.phase === 'closed') return;
    this.upstreamLines.push(chunk);
    for (let event = this.upstreamLines.next(); event !== null; event = this.upstreamLines.next()) {
      if (event.kind === 'overflow') return this.upstreamProtocolError('reply line too long');
      const parsed = this.replyParser.feed(event.line);
      if (parsed instanceof Error) return this.upstreamProtocolError(parsed.message);
      if (parsed === null) continue;
      if (!this.waits.settle(parsed)) return this.onUnsolicitedReply(parsed);
      this.armReplyTimer();
    }
  }

  private upstreamProtocolError(detail: string): void {
    this.log.warn({ upstream: this.options.upstreamLabel, detail }, 'upstream protocol error');
    this.onUpstreamLost(REPLIES.upstreamProtocolError);
    this.upstream?.destroy();
  }

  /** A reply nobody asked for: a 421 shutdown notice is relayed, anything else is a protocol error. */
  private onUnsolicitedReply(unsolicited: Reply): void {
    if (unsolicited.code === 421) return this.onUpstreamLost(unsolicited);
    this.upstreamProtocolError(`unsolicited reply ${unsolicited.code}`);
  }

  private onUpstreamLost(notice: Reply): void {
    if (!this.upstreamAlive) return;
    this.upstreamAlive = false;
    this.upstreamDeadline.clear();
    this.waits.failAll(() => new ProxyError('MM_UPSTREAM_LOST', notice));
    switch (this.phase) {
      case 'command':
      case 'auth':
        if (this.quitting) return this.close({ how: 'polite' });
        if (this.slots.length === 0) this.close({ how: 'reply-now', last: notice });
        return;
      case 'greeting':
      case 'connecting':
        return this.close({ how: 'reply-now', last: REPLIES.upstreamUnreachable });
      case 'data':
      case 'inspecting':
      case 'forwarding':
        // The transaction notices at its next step and answers 451 4.4.2.
        return;
      case 'broken':
      case 'closed':
        return;
    }
  }

  /** Registers the next expected upstream reply; `onLost` defaults to closing the session with the notice. */
  private expectUpstream(kind: WaitKind, onReply: (reply: Reply) => void, onLost?: (error: ProxyError) => void): void {
    this.waits.push({
      kind,
      onReply,
      onLost: onLost ?? ((error) => this.close({ how: 'reply-now', last: kind === 'greeting' ? REPLIES.upstreamUnreachable : error.reply })),
    });
    if (this.waits.length === 1) this.armReplyTimer();
  }

  /** Sends one command upstream and resolves with its reply (used by the proxy's own commands). */
  private requestUpstream(wire: Buffer | undefined, kind: WaitKind): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (!this.upstreamAlive || this.upstream === undefined) {
        reject(new ProxyError('MM_UPSTREAM_LOST', REPLIES.upstreamLost));
        return;
      }
      this.expectUpstream(kind, resolve, reject);
      if (wire !== undefined) this.writeUpstream(wire);
    });
  }

  private writeUpstream(wire: Buffer): void {
    const writer = this.upstreamWriter;
    if (writer === undefined || !this.upstreamAlive) return;
    if (!writer.write(wire)) this.pause('upstream-drain');
  }

  // ---- downstream leg ----------------------------------------------------------

  private onDownstreamData(chunk: Buffer): void {
    switch (this.phase) {
      case 'connecting':
      case 'greeting':
        return this.close({ how: 'reply-now', last: REPLIES.earlyTalker });
      case 'data':
        this.armIdleTimer();
        return this.feedData(chunk);
      case 'inspecting':
      case 'forwarding':
        // Pipelined commands wait for the final reply; reading goes on (so a reset is noticed) up to a bound.
        this.commandLines.push(chunk);
        if (this.commandLines.buffered > MAX_BUFFERED_WHILE_BUSY_BYTES) this.pause('busy');
        return;
      case 'command':
      case 'auth':
      case 'broken':
        // Bytes do not restart the command deadline, replies do: a trickled line cannot extend it.
        this.commandLines.push(chunk);
        return this.processLines();
      case 'closed':
        return;
    }
  }

  private onDownstreamEnd(): void {
    this.downstreamEnded = true;
    if (this.phase === 'data' || inGroup(this.phase, 'opening')) {
      this.abortTransaction('downstream closed the connection during DATA');
      return this.close({ how: 'silent' });
    }
    this.closeIfHalfClosedAndIdle();
  }

  /**
   * The downstream is gone. Mid-DATA the capture is dropped; while a message is inspected
   * or forwarded, closing the upstream makes that transaction fail at its next step (no
   * final dot is sent for a sender that can no longer hear the reply), and it reports itself.
   */
  private onDownstreamClose(): void {
    if (this.phase === 'closed') return;
    if (this.phase === 'data') this.abortTransaction('downstream connection lost during DATA');
    this.close({ how: 'silent' });
  }

  private processLines(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      while (!this.readPaused && inGroup(this.phase, 'awaiting-line')) {
        const event = this.commandLines.next();
        if (event === null) break;
        this.handleLine(event);
      }
    } finally {
      this.processing = false;
      this.uncorkUpstream();
    }
    this.closeIfHalfClosedAndIdle();
  }

  private handleLine(event: LineEvent): void {
    // An over-long SASL line cancels the exchange ("*", RFC 4954 4); the upstream's 501 is the answer.
    if (this.phase === 'auth') return this.forwardSaslResponse(event.kind === 'line' ? event.line : Buffer.from('*', 'latin1'));
    if (event.kind === 'overflow') return this.answerLocally(REPLIES.lineTooLong);
    const parsed = parseCommand(event.line);
    switch (parsed.kind) {
      case 'invalid':
      case 'unknown':
        if (this.unknownCommands.record()) return this.close({ how: 'reply-in-turn', last: REPLIES.tooManyUnknown });
        return this.answerLocally(parsed.kind === 'invalid' ? REPLIES.invalidCharacters : REPLIES.unknownCommand);
      case 'command':
        return this.handleCommand(parsed.command);
    }
  }

  private handleCommand(command: ParsedCommand): void {
    const { spec } = command;
    if (!spec.phases.includes(this.phase)) return this.close({ how: 'reply-now', last: REPLIES.brokenSession });
    if (this.phase === 'broken') {
      this.readPaused = true;
      this.slots.add({ reply: REPLIES.goodbye, after: () => this.close({ how: 'polite' }) });
      return this.flushReplies();
    }
    const action = spec.action;
    switch (action.kind) {
      case 'refuse':
        return this.answerLocally(action.reply);
      case 'close':
        return this.close({ how: 'reply-in-turn', last: action.reply });
      case 'data':
        this.readPaused = true;
        this.slots.add({ compute: () => this.answerData(), after: (answer) => this.afterDataAnswer(answer) });
        return this.flushReplies();
      case 'starttls':
        return this.startTls(command);
      case 'xforward':
        return this.onXforward(command);
      case 'forward':
        return this.forwardCommand(command, action);
    }
  }

  private forwardCommand(command: ParsedCommand, relay: Relay): void {
    if (relay.onAccepted === 'greeted' || relay.onAccepted === 'greeted-extended' || relay.onAccepted === 'reset') this.endForwarded();
    if (relay.checksDeclaredSize === true) {
      const size = declaredSize(command.argument);
      if (size !== undefined && size > this.options.policy.limits.max_message_bytes) return this.answerLocally(REPLIES.messageTooBig);
    }
    if (relay.onAccepted === 'sender' && !this.admitForwarded()) return this.answerLocally(REPLIES.forwardedClientLimited);
    this.corkUpstream();
    const slot = this.slots.add({});
    if (command.spec.waitsForReply) {
      this.readPaused = true;
      slot.after = () => this.resumeReading();
    }
    if (relay.closesSession === true) {
      this.quitting = true;
      slot.after = () => this.close({ how: 'polite' });
    }
    this.expectUpstream('command', (upstreamReply) => {
      slot.reply = this.afterUpstreamReply(command, relay, upstreamReply);
      this.flushReplies();
    });
    this.writeUpstream(command.wire);
    if (command.spec.endsGroup) this.uncorkUpstream();
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ verb: command.verb, argument: command.spec.logArgument ? command.argument : '[redacted]' }, 'command relayed');
    }
  }

  /** SASL continuation lines (RFC 4954 4) go upstream as they are and are never logged. */
  private forwardSaslResponse(line: Buffer): void {
    this.readPaused = true;
    const slot = this.slots.add({ after: () => this.resumeReading() });
    this.expectUpstream('command', (upstreamReply) => {
      this.phase = upstreamReply.code === 334 ? 'auth' : 'command';
      slot.reply = upstreamReply;
      this.flushReplies();
    });
    this.writeUpstream(Buffer.concat([line, CRLF]));
  }

  /** Session state follows the upstream's acceptance (the row's expected class); the reply relayed may be filtered. */
  private afterUpstreamReply(command: ParsedCommand, relay: Relay, upstreamReply: Reply): Reply {
    if (!accepted(relay.expect, upstreamReply)) {
      if (relay.continuesWithSasl === true && upstreamReply.code === 334) this.phase = 'auth';
      return upstreamReply;
    }
    switch (relay.onAccepted) {
      case 'greeted':
        this.resetTransaction(command.argument);
        return upstreamReply;
      case 'greeted-extended': {
        this.resetTransaction(command.argument);
        this.upstreamOffersStartTls = offersStartTls(upstreamReply);
        this.upstreamXforward = offeredAttributes(upstreamReply.lines);
        const relayed = filterEhloReply(upstreamReply, this.options.policy.limits.max_message_bytes, this.offersStartTls());
        return this.options.xforward === undefined ? relayed : offerXforward(relayed);
      }
      case 'sender':
        this.transaction.sender = pathOf(command.argument);
        this.transaction.recipients = [];
        this.transaction.declaredSize = declaredSize(command.argument);
        return upstreamReply;
      case 'recipient':
        this.transaction.recipients.push(pathOf(command.argument));
        return upstreamReply;
      case 'reset':
        this.resetTransaction(this.transaction.helo);
        return upstreamReply;
      case 'nothing':
        return upstreamReply;
    }
  }

  private resetTransaction(helo: string): void {
    this.transaction.helo = helo;
    this.transaction.sender = undefined;
    this.transaction.recipients = [];
    this.transaction.declaredSize = undefined;
  }

  private answerLocally(localReply: Reply): void {
    this.slots.add({ reply: localReply });
    this.flushReplies();
  }

  private flushReplies(): void {
    const downstream = this.downstream;
    this.slots.flush((next) => {
      if (downstream.destroyed || !downstream.writable) return;
      if (!downstream.write(serializeReply(next))) this.pause('downstream-drain');
    });
    this.armIdleTimer();
    this.closeIfHalfClosedAndIdle();
  }

  private resumeReading(): void {
    this.readPaused = false;
    this.processLines();
  }

  private enterCommandPhase(): void {
    this.phase = 'command';
    this.armIdleTimer();
    this.processLines();
  }

  // ---- XFORWARD (Postfix XFORWARD_README) --------------------------------------------

  /**
   * A trusted peer's XFORWARD applies to the commands read after it (the peer pipelines it with
   * MAIL), so it is taken when it is read. It also goes upstream when the upstream offers
   * XFORWARD (with the attributes it offers); otherwise the proxy answers it.
   */
  private onXforward(command: ParsedCommand): void {
    if (this.options.xforward === undefined) return this.answerLocally(REPLIES.xclientRefused);
    if (this.transaction.sender !== undefined) return this.answerLocally(REPLIES.xforwardInTransaction);
    const pairs = parseXforward(command.argument);
    if (pairs instanceof Error) return this.answerLocally(makeReply(501, `5.5.4 XFORWARD ${pairs.message}`));
    this.forwarded.update(pairs);
    this.log.debug({ xforward: this.forwarded.describe() }, 'client attributes forwarded');
    const relayed = relayedCommand(pairs, this.upstreamXforward);
    if (relayed === undefined) return this.answerLocally(REPLIES.xforwardAccepted);
    this.forwardCommand({ ...command, wire: relayed }, XFORWARD_RELAY);
  }

  /** A forwarded client's MAIL takes its per-address limits; false when it is over one. */
  private admitForwarded(): boolean {
    const trust = this.options.xforward;
    const address = this.forwarded.address;
    if (trust === undefined || address === undefined) return true;
    this.releaseForwarded?.();
    const admission = trust.admit(address);
    this.releaseForwarded = admission.admitted ? admission.release : undefined;
    if (!admission.admitted) this.log.warn({ client: address, limit: admission.limit }, 'forwarded client over a limit: its message is tempfailed');
    return admission.admitted;
  }

  /** The transaction ended (or RSET, EHLO, HELO was read): the forwarded attributes are forgotten. */
  private endForwarded(): void {
    this.forwarded.reset();
    this.releaseForwarded?.();
    this.releaseForwarded = undefined;
  }

  /** The transaction's client address: the forwarded one when a trusted peer gave it. */
  private clientAddress(): string {
    return this.forwarded.address ?? this.options.downstreamAddress;
  }

  private transactionDirection(): Direction {
    const trust = this.options.xforward;
    return trust !== undefined && this.forwarded.active ? this.forwarded.direction(trust) : this.options.direction;
  }

  private transactionInspected(): boolean {
    const trust = this.options.xforward;
    return trust !== undefined && this.forwarded.active ? trust.inspects(this.transactionDirection()) : this.options.inspect;
  }

  // ---- STARTTLS (RFC 3207) -----------------------------------------------------------

  /** Whether the EHLO reply relayed downstream offers STARTTLS. */
  private offersStartTls(): boolean {
    if (this.tls !== 'none') return false;
    return this.options.starttls !== 'strip' && this.upstreamOffersStartTls;
  }

  private startTls(command: ParsedCommand): void {
    if (this.tls !== 'none') return this.answerLocally(REPLIES.tlsAlreadyActive);
    if (!this.offersStartTls()) return this.answerLocally(REPLIES.tlsNotAvailable);
    this.readPaused = true;
    const slot = this.slots.add({});
    if (this.options.starttls === 'passthrough') {
      // Relayed; on the upstream's 2yz (220, or any 2yz: the class decides) the two legs are spliced and the TLS bytes flow through unread.
      slot.after = (answer) => (accepted(COMMANDS.STARTTLS.action.expect, answer) ? this.passThrough() : this.resumeReading());
      this.expectUpstream('command', (upstreamReply) => {
        slot.reply = upstreamReply;
        this.flushReplies();
      });
      this.writeUpstream(command.wire);
      return;
    }
    this.upgradeUpstream().then(
      (refusal) => {
        if (this.phase === 'closed') return;
        slot.reply = refusal ?? REPLIES.readyToStartTls;
        slot.after = refusal === undefined ? () => this.upgradeDownstream() : () => this.resumeReading();
        this.flushReplies();
      },
      (error: unknown) => {
        if (error instanceof TlsVerifyError) {
          this.log.warn({ upstream: this.options.upstreamLabel, reason: error.reason }, 'upstream certificate not trusted: session refused');
          return this.close({ how: 'reply-now', last: REPLIES.upstreamUntrusted });
        }
        this.log.warn({ upstream: this.options.upstreamLabel, reason: (error as Error).message }, 'upstream TLS failed');
        this.close({ how: 'reply-now', last: error instanceof ProxyError ? error.reply : REPLIES.upstreamTlsFailed });
      },
    );
  }

  /**
   * Intercept, upstream leg first: STARTTLS there, then a verified TLS client handshake.
   * Resolves with the reply for the downstream when the upstream refused STARTTLS.
   */
  private async upgradeUpstream(): Promise<Reply | undefined> {
    const answer = await this.requestUpstream(OWN_REQUESTS.STARTTLS.wire, 'command');
    if (!accepted(OWN_REQUESTS.STARTTLS.expect, answer)) return REPLIES.tlsNotAvailable;
    const raw = this.upstream;
    if (raw === undefined) throw new ProxyError('MM_UPSTREAM_LOST', REPLIES.upstreamLost);
    unbind(raw, this.upstreamHandlers);
    // Bytes the upstream sent behind its 220 are not part of the TLS session.
    this.upstreamLines.takeRest();
    const secure = await connectTls(raw, this.options.upstreamHost, this.options.tlsSetup, this.options.policy.tls.handshake_seconds);
    if (this.phase === 'closed') {
      secure.destroy();
      return undefined;
    }
    this.upstream = secure;
    this.upstreamWriter = new StuffedWriter(secure);
    bind(secure, this.upstreamHandlers);
    this.upstreamOffersStartTls = false;
    this.log.debug({ upstream: this.options.upstreamLabel, protocol: secure.getProtocol(), authorized: secure.authorized }, 'upstream TLS established');
    return undefined;
  }

  /** Intercept, downstream leg: after our 220, a TLS server handshake with a leaf from our CA. */
  private upgradeDownstream(): void {
    const raw = this.downstream;
    const { tlsSetup, tlsName, policy } = this.options;
    const legs = { command: 'STARTTLS', downstream: raw, downstreamUnread: this.commandLines.takeRest().length, log: this.log } as const;
    interceptDownstream({ ...legs, tlsSetup, tlsName, handshakeSeconds: policy.tls.handshake_seconds }, () => {
      unbind(raw, this.downstreamHandlers);
      this.downstreamDeadline.clear();
    }).then(
      (secure) => this.guard(this.onDownstreamSecure, secure),
      (error: unknown) => {
        this.log.info({ reason: (error as Error).message }, 'downstream TLS handshake failed');
        this.close({ how: 'silent' });
      },
    );
  }

  private onDownstreamSecure(secure: TLSSocket): void {
    if (this.phase === 'closed') {
      secure.destroy();
      return;
    }
    this.downstream = secure;
    this.tls = 'intercepted';
    bind(secure, this.downstreamHandlers);
    if (this.paused.size > 0) secure.pause();
    // RFC 3207 4.2: everything learnt before TLS is forgotten; the client starts over with EHLO.
    this.resetTransaction('');
    this.log.debug({ protocol: secure.getProtocol() }, 'STARTTLS intercepted');
    this.resumeReading();
  }

  /** Passthrough: after the upstream's 220 the legs are joined; nothing after this is read or inspected. */
  private passThrough(): void {
    const downstream = this.downstream;
    const upstream = this.upstream;
    if (upstream === undefined || !this.upstreamAlive) return this.close({ how: 'reply-now', last: REPLIES.upstreamLost });
    const legs = { command: 'STARTTLS', downstream, downstreamUnread: this.commandLines.takeRest().length, log: this.log } as const;
    startPassthrough(
      { ...legs, upstream, upstreamLabel: this.options.upstreamLabel, idleSeconds: this.options.policy.timeouts.command_seconds },
      {
        release: () => {
          this.upstreamLines.takeRest();
          unbind(downstream, this.downstreamHandlers);
          unbind(upstream, this.upstreamHandlers);
          this.phase = 'closed';
          this.downstreamDeadline.clear();
          this.upstreamDeadline.clear();
          this.stopKeepalive();
        },
        onPassthrough: () => this.emit('passthrough'),
        onClose: () => this.emit('close'),
      },
    );
  }

  // ---- DATA --------------------------------------------------------------------

  /** RFC 5321 3.3 / RFC 2920 3.1: DATA needs a sender and a recipient the upstream accepted. */
  private answerData(): Reply {
    if (this.transaction.sender === undefined) return REPLIES.needMail;
    if (this.transaction.recipients.length === 0) return REPLIES.noValidRecipients;
    if (refuseOverMemoryBudget(this.options.policy.limits.max_process_memory_bytes, this.log, 'DATA')) return REPLIES.memoryBudget;
    const safety = this.options.largeMessages;
    if (safety === undefined) return REPLIES.startData;
    const key = this.largeMessageKey();
    if (recognisable(key, safety.abortOverBytes) && safety.memory.has(key)) {
      this.log.info({ sender: this.transaction.sender }, 'large message offered again: refused');
      return REPLIES.largeMessageRemembered;
    }
    return REPLIES.startData;
  }

  private afterDataAnswer(answer: Reply): void {
    if (!accepted(COMMANDS.DATA.action.expect, answer)) return this.resumeReading();
    this.phase = 'data';
    this.capture = {
      spool: payloadSpool(this.options.spoolDir, this.options.policy),
      decoder: new DataDecoder(),
      size: 0,
      tooBig: false,
      startedAt: performance.now(),
      windowBytes: 0,
    };
    this.startKeepalive();
    this.startRateCheck();
    this.armIdleTimer();
    const buffered = this.commandLines.takeRest();
    if (buffered.length > 0) this.feedData(buffered);
    if (this.downstreamEnded && this.phase === 'data') {
      this.abortTransaction('downstream closed the connection during DATA');
      this.close({ how: 'silent' });
    }
  }

  private feedData(chunk: Buffer): void {
    const capture = this.capture;
    if (capture === undefined) return;
    capture.windowBytes += chunk.length;
    const decoded = capture.decoder.decode(chunk);
    // One spool write per socket read: the decoder's line slices are joined here, not written one by one.
    const content = decoded.content.length === 1 ? (decoded.content[0] as Buffer) : Buffer.concat(decoded.content);
    capture.size += content.length;
    if (capture.size > this.options.policy.limits.max_message_bytes) capture.tooBig = true;
    const safety = this.options.largeMessages;
    if (safety !== undefined && capture.size > safety.abortOverBytes && !safety.exempt(this.transaction.sender ?? '')) return this.cutLargeMessage(safety, capture.size);
    const mustDrain = !capture.tooBig && !capture.spool.write(content);
    if (mustDrain) {
      this.pause('spool-drain');
      capture.spool.drained().then(
        () => this.resume('spool-drain'),
        () => this.resume('spool-drain'),
      );
    }
    if (!decoded.ended) return;
    this.commandLines.push(decoded.rest);
    this.phase = 'inspecting';
    this.stopRateCheck();
    this.downstreamDeadline.clear();
    this.completeTransaction(capture).catch((error: unknown) => {
      this.log.error({ err: error }, 'transaction failed');
      this.close({ how: 'reply-now', last: REPLIES.internalError });
    });
  }

  /** Inspects the captured message, forwards or refuses it, and relays the final reply. */
  private async completeTransaction(capture: Capture): Promise<void> {
    let outcome: { final: Reply; verdict: TransactionSummary['verdict']; reason?: string };
    try {
      outcome = await this.decide(capture);
    } finally {
      this.stopKeepalive();
    }
    this.finishTransaction(capture, outcome.final, outcome.verdict, outcome.reason);
    await capture.spool.dispose();
  }

  private async decide(capture: Capture): Promise<{ final: Reply; verdict: TransactionSummary['verdict']; reason?: string }> {
    const { sender, recipients, helo } = this.transaction;
    const direction = this.transactionDirection();
    // Whether this transaction is inspected: its direction, which a trusted peer's XFORWARD may set.
    const outcome = await runPayloadStep(this.payloadSteps[this.transactionInspected() ? 'inspected' : 'uninspected'], {
      spool: capture.spool,
      size: capture.size,
      bareLineEndings: capture.decoder.bareLineEndings,
      context: {
        sessionId: this.options.id,
        direction,
        sender: sender ?? '',
        recipients,
        client: {
          address: this.forwarded.address ?? this.downstreamLabel.slice(0, this.downstreamLabel.lastIndexOf(':')),
          helo: this.forwarded.helo ?? helo.split(/\s/)[0] ?? '',
        },
      },
      record: { session: this.options.id, protocol: 'smtp', direction, sender: sender ?? '', recipients: [...recipients] },
      peerLost: () => !this.upstreamAlive,
    });
    if (outcome.quarantine !== undefined) capture.quarantined = outcome.quarantine;
    switch (outcome.kind) {
      case 'forward':
        try {
          return await this.forwardMessage(outcome.source, outcome.verdict, outcome.reason);
        } finally {
          await outcome.release();
        }
      case 'tempfail':
        // The upstream is gone: there is no transaction to reset there.
        if (outcome.cause === 'peer-lost') return { final: REPLIES.upstreamLostInData, verdict: 'tempfail', reason: outcome.reason };
        return this.refuse(refusalReply(outcome), 'tempfail', outcome.reason);
      case 'refuse':
        return this.refuse(refusalReply(outcome), refusalVerdict(outcome), outcome.reason);
    }
  }

  /** A refusal by the proxy: the upstream never saw DATA, so an RSET clears its transaction. */
  private async refuse(final: Reply, verdict: TransactionSummary['verdict'], reason: string) {
    this.phase = 'forwarding';
    try {
      const reset = await this.requestUpstream(OWN_REQUESTS.RSET.wire, 'command');
      if (!accepted(OWN_REQUESTS.RSET.expect, reset)) return { final, verdict, reason: `${reason}; upstream answered RSET with ${reset.code}` };
    } catch {
      return { final, verdict, reason: `${reason}; upstream lost` };
    }
    return { final, verdict, reason };
  }

  private async forwardMessage(message: MessageSource, verdict: 'pass' | 'rewrite', reason?: string) {
    this.phase = 'forwarding';
    this.stopKeepalive();
    const writer = this.upstreamWriter;
    try {
      if (writer === undefined) throw new ProxyError('MM_UPSTREAM_LOST', REPLIES.upstreamLostInData);
      const dataReply = this.requestUpstream(undefined, 'command');
      // From DATA to the final dot the writer owns the upstream socket: no keepalive can interleave.
      const lease = writer.begin([OWN_REQUESTS.DATA.wire]);
      let answer: Reply;
      try {
        answer = await dataReply;
      } catch (error) {
        lease.release();
        throw error;
      }
      // Any 3yz goes on (RFC 5321 4.2.1: the class decides); a 4yz/5yz is the final reply, anything else the generic 451.
      if (!accepted(OWN_REQUESTS.DATA.expect, answer)) {
        lease.release();
        return { final: asRefusal(answer), verdict: 'refused' as const, reason: `upstream answered DATA with ${answer.code}` };
      }
      let finalReply: Promise<Reply> | undefined;
      await lease.send(message, () => {
        // An upstream lost while the message streamed gets no final dot.
        if (!this.upstreamAlive) throw new ProxyError('MM_UPSTREAM_LOST', REPLIES.upstreamLostInData);
        finalReply = this.requestUpstream(undefined, 'final');
        // If the dot cannot be written, that failure is the one reported; this one is expected.
        finalReply.catch(() => undefined);
      });
      if (finalReply === undefined) throw new ProxyError('MM_UPSTREAM_LOST', REPLIES.upstreamLostInData);
      const final = await finalReply;
      const relayed = accepted(OWN_REQUESTS['final-dot'].expect, final) ? final : asRefusal(final);
      return { final: relayed, verdict, ...(reason === undefined ? {} : { reason }) };
    } catch (error) {
      const lost = error instanceof ProxyError && error.code === 'MM_UPSTREAM_FINAL_TIMEOUT' ? REPLIES.upstreamFinalTimeout : REPLIES.upstreamLostInData;
      this.upstreamAlive = false;
      this.upstream?.destroy();
      return { final: lost, verdict: 'tempfail' as const, reason: `transfer failed: ${(error as Error).message}` };
    }
  }

  private finishTransaction(capture: Capture, final: Reply, verdict: TransactionSummary['verdict'], reason?: string): void {
    this.report(capture, verdict, reason, `${final.code} ${final.lines.join(' ')}`.slice(0, 200));
    this.endForwarded();
    this.capture = undefined;
    this.resetTransaction(this.transaction.helo);
    if (this.phase === 'closed') return;
    this.phase = this.upstreamAlive ? 'command' : 'broken';
    this.slots.add({ reply: final, after: () => (this.draining ? this.close({ how: 'reply-now', last: REPLIES.shuttingDown }) : this.resumeReading()) });
    this.flushReplies();
    this.resume('busy');
  }

  /**
   * Large Message Safety: the downstream connection is cut at once, the upstream transaction is
   * abandoned (its connection closed, never a final dot), and the key is remembered.
   */
  private cutLargeMessage(safety: LargeMessageSafety, size: number): void {
    const key = this.largeMessageKey();
    const remembered = recognisable(key, safety.abortOverBytes);
    this.log.warn({ sender: this.transaction.sender, recipients: this.transaction.recipients.length, size, abortOver: safety.abortOverBytes, declaredSize: key.declaredSize, remembered }, remembered ? 'large message cut off and remembered' : 'large message cut off');
    if (remembered) safety.memory.remember(key).catch((error: unknown) => this.log.error({ err: error, file: safety.memory.file }, 'large message key could not be saved'));
    this.abortTransaction(`large message safety: over ${safety.abortOverBytes} bytes`);
    this.close({ how: 'silent' });
  }

  private largeMessageKey() {
    const { helo, sender, recipients, declaredSize } = this.transaction;
    return { client: this.clientAddress(), helo, sender: sender ?? '', recipients, declaredSize };
  }

  /** Drops a transaction that cannot complete; closing the upstream before its final dot delivers nothing. */
  private abortTransaction(reason: string): void {
    const capture = this.capture;
    if (capture === undefined) return;
    this.capture = undefined;
    this.stopKeepalive();
    this.stopRateCheck();
    this.upstreamAlive = false;
    this.upstream?.destroy();
    this.report(capture, 'aborted', reason, '');
    this.endForwarded();
    void capture.spool.dispose();
  }

  /** The one summary line per transaction (and the `transaction` event carrying it). */
  private report(capture: Capture, verdict: TransactionSummary['verdict'], reason: string | undefined, upstreamReply: string): void {
    const { helo, sender, recipients } = this.transaction;
    const forwarded = this.forwarded.describe();
    const summary: TransactionSummary = summarize(
      { session: this.options.id, downstream: this.downstreamLabel, upstream: this.options.upstreamLabel, tls: this.tls, inspected: this.transactionInspected() },
      { direction: this.transactionDirection(), helo, sender: sender ?? '', recipients: recipients.length, upstreamReply, ...(forwarded === undefined ? {} : { xforward: forwarded }) },
      { size: capture.size, verdict, reason, quarantine: capture.quarantined, startedAt: capture.startedAt },
    );
    // The summary names its session: the session-less logger writes it (no key twice, no per-line de-duplication).
    this.options.logger.info(summary, 'transaction');
    this.emit('transaction', summary);
  }

  // ---- timers --------------------------------------------------------------------

  /**
   * Downstream deadline, only while the downstream owes us bytes (no reply outstanding): between
   * commands it runs from the last reply to the next complete line (each reply restarts it, a byte
   * does not); inside DATA each chunk restarts it, and the minimum rate bounds a trickle there.
   */
  private armIdleTimer(): void {
    const { timeouts } = this.options.policy;
    if (this.phase === 'data') return this.downstreamDeadline.set('data', timeouts.data_seconds);
    if (inGroup(this.phase, 'awaiting-line') && this.slots.length === 0) return this.downstreamDeadline.set('command', timeouts.command_seconds);
    this.downstreamDeadline.clear();
  }

  private onDownstreamDeadline(kind: DownstreamDeadline): void {
    this.log.info({ phase: this.phase }, 'downstream idle timeout');
    switch (kind) {
      case 'data':
        this.abortTransaction('downstream idle timeout during DATA');
        return this.close({ how: 'reply-now', last: REPLIES.dataTimeout });
      case 'command':
        return this.close({ how: 'reply-now', last: REPLIES.commandTimeout });
    }
  }

  /** The upstream owes a reply: the oldest wait's kind sets the limit. */
  private armReplyTimer(): void {
    const head = this.waits.head;
    if (head === undefined) return this.upstreamDeadline.clear();
    const { timeouts } = this.options.policy;
    const seconds = head.kind === 'greeting' ? timeouts.greeting_seconds : head.kind === 'final' ? timeouts.final_reply_seconds : timeouts.upstream_reply_seconds;
    this.upstreamDeadline.set(head.kind, seconds);
  }

  private onUpstreamDeadline(kind: WaitKind): void {
    this.log.warn({ waiting: kind }, 'upstream reply timeout');
    const failure = (): ProxyError => {
      switch (kind) {
        case 'greeting':
          return new ProxyError('MM_UPSTREAM_GREETING_TIMEOUT', REPLIES.upstreamGreetingTimeout);
        case 'final':
          return new ProxyError('MM_UPSTREAM_FINAL_TIMEOUT', REPLIES.upstreamFinalTimeout);
        case 'command':
          return new ProxyError('MM_UPSTREAM_REPLY_TIMEOUT', REPLIES.upstreamReplyTimeout);
      }
    };
    this.upstreamAlive = false;
    this.waits.failAll(failure);
    this.upstream?.destroy();
  }

  /** ProxSMTP's KeepAlives: NOOP upstream while the downstream sends or we inspect. */
  private startKeepalive(): void {
    this.stopKeepalive();
    this.keepaliveTimer = setInterval(() => {
      // Never while a message streams: the writer owns the socket from DATA to the final dot.
      if (this.waits.length > 0 || !this.upstreamAlive || this.upstreamWriter?.streaming !== false) return;
      this.requestUpstream(OWN_REQUESTS.NOOP.wire, 'command').catch(() => undefined);
    }, this.options.policy.timeouts.upstream_keepalive_seconds * 1000);
    this.keepaliveTimer.unref();
  }

  /**
   * Slowloris: inside DATA, a sender that delivers less than limits.min_data_bytes_per_second
   * over a window is cut off (421 4.4.2; the upstream never sees a final dot).
   */
  private startRateCheck(): void {
    this.stopRateCheck();
    const minimum = this.options.policy.limits.min_data_bytes_per_second;
    if (minimum === 0) return;
    this.rateTimer = setInterval(() => {
      const capture = this.capture;
      if (capture === undefined || this.phase !== 'data') return this.stopRateCheck();
      const received = capture.windowBytes;
      capture.windowBytes = 0;
      if (received >= (minimum * RATE_WINDOW_MS) / 1000) return;
      this.log.info({ bytesPerSecond: Math.round((received * 1000) / RATE_WINDOW_MS), minimum }, 'DATA arriving too slowly: cut off');
      this.close({ how: 'reply-now', last: REPLIES.dataTooSlow });
    }, RATE_WINDOW_MS);
    this.rateTimer.unref();
  }

  private stopRateCheck(): void {
    if (this.rateTimer !== undefined) clearInterval(this.rateTimer);
    this.rateTimer = undefined;
  }

  private stopKeepalive(): void {
    if (this.keepaliveTimer !== undefined) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
  }

  // ---- flow control ----------------------------------------------------------------

  private pause(reason: PauseReason): void {
    this.paused.add(reason);
    this.downstream.pause();
  }

  private resume(reason: PauseReason): void {
    if (!this.paused.delete(reason) || this.paused.size > 0 || this.phase === 'closed') return;
    this.downstream.resume();
  }

  private corkUpstream(): void {
    if (this.upstreamCorked || this.upstream === undefined) return;
    this.upstream.cork();
    this.upstreamCorked = true;
  }

  private uncorkUpstream(): void {
    if (!this.upstreamCorked || this.upstream === undefined) return;
    this.upstreamCorked = false;
    this.upstream.uncork();
  }

  // ---- closing -----------------------------------------------------------------------

  private closeIfHalfClosedAndIdle(): void {
    if (!this.downstreamEnded || this.processing || this.slots.length > 0) return;
    if (!inGroup(this.phase, 'awaiting-line')) return;
    this.close({ how: 'polite' });
  }

  /** Ends the session the way the caller names (closing.ts); what each leg gets is decided here and in upstreamEnd() only. */
  private close(closing: Closing): void {
    if (this.phase === 'closed') return;
    if (closing.how !== 'reply-in-turn') return this.endLegs(closing);
    // The proxy's own decision after a command (too many unknown verbs, an HTTP request): the last
    // reply waits its turn behind the replies owed to earlier pipelined commands.
    this.readPaused = true;
    this.slots.add({ reply: closing.last, after: () => this.endLegs(closing) });
    this.flushReplies();
  }

  private endLegs(closing: Closing): void {
    if (this.phase === 'closed') return;
    const downstream = this.downstream;
    switch (closing.how) {
      case 'polite':
      case 'reply-in-turn':
        downstream.end();
        break;
      case 'reply-now':
        if (!downstream.destroyed && downstream.writable) downstream.end(serializeReply(closing.last));
        break;
      case 'silent':
        downstream.destroy();
        break;
    }
    if (closing.how === 'reply-now' || closing.how === 'reply-in-turn') {
      this.log.info({ reply: `${closing.last.code} ${closing.last.lines.join(' ')}` }, 'session closed by the proxy');
      this.abortTransaction('session closed by the proxy');
    }
    this.endUpstream(closing.how);
    this.finalize();
  }

  private endUpstream(how: CloseHow): void {
    const upstream = this.upstream;
    if (upstream === undefined) return;
    switch (upstreamEnd(how, { alive: this.upstreamAlive, quitSent: this.quitting, inTransfer: this.phase === 'forwarding' })) {
      case 'quit':
        upstream.end(OWN_REQUESTS.QUIT.wire);
        break;
      case 'fin':
        upstream.end();
        break;
      case 'destroy':
        upstream.destroy();
        break;
    }
    this.upstreamAlive = false;
  }

  private finalize(): void {
    this.phase = 'closed';
    this.endForwarded();
    this.downstreamDeadline.clear();
    this.upstreamDeadline.clear();
    this.stopKeepalive();
    this.stopRateCheck();
    this.waits.failAll(() => new ProxyError('MM_SESSION_CLOSED', REPLIES.upstreamLost));
    destroyAfterLinger(this.downstream);
    this.emit('close');
  }
}

/** Our handlers on a socket; unbound before the socket is wrapped in TLS or spliced. */
function bind(socket: Socket, handlers: SocketHandlers): void {
  socket.on('data', handlers.data).on('end', handlers.end).on('drain', handlers.drain).on('error', handlers.error).on('close', handlers.close);
}

function unbind(socket: Socket, handlers: SocketHandlers): void {
  socket.off('data', handlers.data).off('end', handlers.end).off('drain', handlers.drain).off('error', handlers.error).off('close', handlers.close);
}

const offersStartTls = (ehlo: Reply): boolean => ehlo.lines.slice(1).some((line) => line.trim().toUpperCase() === 'STARTTLS');
