/**
 * STARTTLS (RFC 3207) and STLS (RFC 2595) on a proxy, for both dialects: the mode type,
 * defined once; the discard of plaintext sent behind the command (CVE-2011-0411: bytes
 * pipelined behind STARTTLS must not be read as if they came inside TLS); the splice of
 * passthrough, after which nothing is read or inspected; and what both sessions do after
 * their positive answer (220 / +OK): startPassthrough() and interceptDownstream().
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../observe/log.js';
import { acceptTls, discardBuffered, type TlsSetup } from './upgrade.js';

/** What STARTTLS / STLS does on a listener: relayed and spliced, refused (not offered), or intercepted. */
export type StartTlsMode = 'passthrough' | 'strip' | 'intercept';

/**
 * Drops what the peer sent behind the command: `unread` bytes the session had already
 * read (its line buffer) and whatever the socket holds. Logged when there was any.
 */
export function discardInjected(command: 'STARTTLS' | 'STLS', unread: number, socket: Socket, log: Logger): void {
  const injected = unread + discardBuffered(socket);
  if (injected > 0) log.warn({ bytes: injected }, `discarded plaintext sent behind ${command} (CVE-2011-0411)`);
}

/**
 * Passthrough: the two legs are joined, each closing or failing takes the other down, and a
 * leg idle for `idleSeconds` is closed. `onClose` runs once, when the downstream is gone.
 */
export function splice(downstream: Socket, upstream: Socket, idleSeconds: number, onClose: () => void): void {
  const idleMs = idleSeconds * 1000;
  for (const [from, to] of [
    [downstream, upstream],
    [upstream, downstream],
  ] as const) {
    from.on('error', () => to.destroy());
    from.once('close', () => to.destroy());
    from.setTimeout(idleMs, () => from.destroy());
    from.pipe(to);
  }
  downstream.once('close', onClose);
}

/** A session's two legs at the moment STARTTLS / STLS was answered positively. */
export interface StartTlsLegs {
  command: 'STARTTLS' | 'STLS';
  downstream: Socket;
  /** Bytes the session had read from the downstream and not yet parsed (its line buffer). */
  downstreamUnread: number;
  log: Logger;
}

/**
 * Passthrough, after the upstream's positive answer: what the downstream sent behind the
 * command and whatever the upstream sent behind its answer are dropped, the session lets go
 * of both sockets (`release`: unbind, mark closed), `onPassthrough` is told, and the legs
 * are spliced (idle for `idleSeconds` closes them). `onClose` runs when the downstream is gone.
 */
export function startPassthrough(
  legs: StartTlsLegs & { upstream: Socket; upstreamLabel: string; idleSeconds: number },
  session: { release: () => void; onPassthrough: () => void; onClose: () => void },
): void {
  discardInjected(legs.command, legs.downstreamUnread, legs.downstream, legs.log);
  discardBuffered(legs.upstream);
  session.release();
  legs.log.info({ upstream: legs.upstreamLabel }, `${legs.command} passed through: the rest of this session is not inspected`);
  session.onPassthrough();
  splice(legs.downstream, legs.upstream, legs.idleSeconds, session.onClose);
}

/**
 * Intercept, downstream leg, after our own positive answer: what was sent behind the
 * command is dropped, the session lets go of the plain socket (`release`), and a TLS
 * server handshake with a leaf from our CA starts (settles as acceptTls does).
 */
export function interceptDownstream(
  legs: StartTlsLegs & { tlsSetup: TlsSetup; tlsName: string; handshakeSeconds: number },
  release: () => void,
): Promise<TLSSocket> {
  discardInjected(legs.command, legs.downstreamUnread, legs.downstream, legs.log);
  release();
  return acceptTls(legs.downstream, legs.tlsSetup, legs.tlsName, legs.handshakeSeconds);
}
