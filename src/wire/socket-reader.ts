/**
 * A pull reader over one socket for strict request/response protocols (POP3,
 * RFC 1939): the session awaits the next line or the next raw chunk. Lines come
 * from the one LineReader (wire/line-reader.ts).
 *
 * The reader only reads: it keeps no deadline. The caller's timer (session/timers.ts)
 * decides how long a read may take and, when that passes, interrupts the read in
 * progress with its own error; so a peer trickling bytes extends a deadline only if
 * the caller re-arms it.
 *
 * Backpressure: the socket is paused whenever nobody waits and bytes are
 * buffered, so a peer that sends ahead (or an upstream streaming a large RETR)
 * is held by TCP, never by memory.
 */
import type { Socket } from 'node:net';
import { LineReader, type LineEvent } from './line-reader.js';

/** What a caller's deadline usually interrupts a read with. */
export class ReadTimeout extends Error {
  constructor(readonly seconds: number) {
    super(`no data within ${seconds} s`);
  }
}

/** The socket ended or closed before the awaited bytes arrived. */
export const CLOSED = Symbol('closed');

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

export class SocketReader {
  private readonly lines: LineReader;
  private waiter: Waiter | undefined;
  private ended = false;
  private readonly onData = (chunk: Buffer): void => {
    this.lines.push(chunk);
    this.socket.pause();
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };

  constructor(
    private readonly socket: Socket,
    maxLineBytes: number,
  ) {
    this.lines = new LineReader(maxLineBytes);
    socket.pause();
    socket.on('data', this.onData).on('end', this.onEnd).on('close', this.onEnd);
  }

  /**
   * Stops reading this socket (before it is wrapped in TLS or spliced) and returns how
   * many buffered bytes nobody read: they are dropped.
   */
  detach(): number {
    this.socket.off('data', this.onData).off('end', this.onEnd).off('close', this.onEnd);
    return this.lines.takeRest().length;
  }

  /** The next complete line (or an overflow notice); CLOSED when the peer is gone. */
  async nextLine(): Promise<LineEvent | typeof CLOSED> {
    for (;;) {
      const event = this.lines.next();
      if (event !== null) return event;
      if (this.ended) return CLOSED;
      await this.waitForData();
    }
  }

  /** Buffered bytes first, then the next chunk from the socket; CLOSED when the peer is gone. */
  async nextChunk(): Promise<Buffer | typeof CLOSED> {
    if (this.lines.buffered === 0) {
      if (this.ended) return CLOSED;
      await this.waitForData();
      if (this.lines.buffered === 0) return CLOSED;
    }
    return this.lines.takeRest();
  }

  /**
   * The caller's deadline passed: the read in progress rejects with `error` and the socket
   * is paused again. Without a read in progress nothing happens.
   */
  interrupt(error: Error): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    this.waiter = undefined;
    this.socket.pause();
    waiter.reject(error);
  }

  /** Gives back bytes read past the end of a payload; they are read again first. */
  unread(bytes: Buffer): void {
    if (bytes.length === 0) return;
    const after = this.lines.takeRest();
    this.lines.push(bytes);
    this.lines.push(after);
  }

  /** True when bytes are waiting (the peer sent ahead of its answer). */
  get hasBuffered(): boolean {
    return this.lines.buffered > 0;
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve();
  }

  private waitForData(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.socket.resume();
    });
  }
}
