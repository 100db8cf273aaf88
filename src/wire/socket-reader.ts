/**
 * A pull reader over one socket for strict request/response protocols (POP3,
 * RFC 1939): the session awaits the next line or the next raw chunk, each with
 * a deadline (a line's deadline covers the whole line; a chunk's, the next chunk).
 * Lines come from the one LineReader (wire/line-reader.ts).
 *
 * Backpressure: the socket is paused whenever nobody waits and bytes are
 * buffered, so a peer that sends ahead (or an upstream streaming a large RETR)
 * is held by TCP, never by memory.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { LineReader, type LineEvent } from './line-reader.js';

export class ReadTimeout extends Error {
  constructor(readonly seconds: number) {
    super(`no data within ${seconds} s`);
  }
}

/** The socket ended or closed before the awaited bytes arrived. */
export const CLOSED = Symbol('closed');

export class SocketReader {
  private readonly lines: LineReader;
  private wake: (() => void) | undefined;
  private ended = false;
  private readonly onData = (chunk: Buffer): void => {
    this.lines.push(chunk);
    this.socket.pause();
    this.wake?.();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake?.();
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

  /**
   * The next line (or an overflow notice); CLOSED when the peer is gone. The whole line must
   * arrive within `timeoutSeconds`: a peer trickling bytes does not extend the deadline.
   */
  async nextLine(timeoutSeconds: number): Promise<LineEvent | typeof CLOSED> {
    const deadline = performance.now() + timeoutSeconds * 1000;
    for (;;) {
      const event = this.lines.next();
      if (event !== null) return event;
      if (this.ended) return CLOSED;
      await this.waitForData(timeoutSeconds, Math.max(0, deadline - performance.now()));
    }
  }

  /** Buffered bytes first, then the next chunk from the socket; CLOSED when the peer is gone. */
  async nextChunk(timeoutSeconds: number): Promise<Buffer | typeof CLOSED> {
    if (this.lines.buffered === 0) {
      if (this.ended) return CLOSED;
      await this.waitForData(timeoutSeconds, timeoutSeconds * 1000);
      if (this.lines.buffered === 0) return CLOSED;
    }
    return this.lines.takeRest();
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

  private waitForData(timeoutSeconds: number, waitMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        this.socket.pause();
        reject(new ReadTimeout(timeoutSeconds));
      }, waitMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      this.socket.resume();
    });
  }
}
