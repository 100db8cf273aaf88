/**
 * A message read while it is decoded: the decoded bytes of an attached message
 * (RFC 2046 5.2, message/*) flow from the outer part's decoder into the walk of
 * the inner message, with backpressure, instead of being held whole. At most
 * FEED_HIGH_WATER_BYTES wait between the two (the decoder is paused past that), so
 * the memory the walk holds does not grow with the size or the nesting of attached
 * messages. The feed is cut once more than `maxBytes` came (`tooBig`).
 */
import type { MessageSource } from './api.js';

/** Decoded bytes queued for the inner walk before the decoder is paused. */
export const FEED_HIGH_WATER_BYTES = 256 * 1024;

export interface Pausable {
  pause(): void;
  resume(): void;
}

export class DecodedFeed implements MessageSource {
  /** Decoded bytes pushed so far (the inner message's size once the feed ended). */
  size = 0;
  tooBig = false;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: Error | undefined;
  /** The reader left (the inner walk stopped): what comes next is dropped. */
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly producer: Pausable,
    private readonly maxBytes: number,
  ) {}

  push(chunk: Buffer): void {
    if (this.closed || this.ended) return;
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      this.tooBig = true;
      this.end();
      return;
    }
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued >= FEED_HIGH_WATER_BYTES) this.producer.pause();
    this.notify();
  }

  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    this.notify();
  }

  async *open(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const chunk = this.queue.shift();
        if (chunk !== undefined) {
          this.queued -= chunk.length;
          if (this.queued < FEED_HIGH_WATER_BYTES) this.producer.resume();
          yield chunk;
          continue;
        }
        if (this.ended) {
          if (this.failure !== undefined) throw this.failure;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.close();
    }
  }

  /** The reader is gone: what is queued or comes later is dropped, and the decoder runs free. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queued = 0;
    this.producer.resume();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
