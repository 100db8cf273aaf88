/**
 * STARTTLS (RFC 3207) and STLS (RFC 2595) on a proxy, for both dialects: the mode type,
 * defined once; the discard of plaintext sent behind the command (CVE-2011-0411: bytes
 * pipelined behind STARTTLS must not be read as if they came inside TLS); and the splice
 * of passthrough, after which nothing is read or inspected.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../observe/log.js';
import { discardBuffered } from './upgrade.js';

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
