/**
 * The one writer of a connection that carries dot-stuffed payloads: SMTP DATA to the
 * upstream (RFC 5321 4.5.2) and POP3 RETR/TOP responses to the downstream (RFC 1939 3).
 *
 * Invariant: while a payload streams, the writer owns the socket. From the payload's
 * opening line (DATA, "+OK") to its final dot nothing else can be written: write()
 * throws (a caller doing so is a bug) and keepalive() writes nothing. A keepalive
 * (SMTP NOOP upstream, POP3 trace header downstream) therefore cannot land inside a
 * message, whatever its timer does.
 *
 * Backpressure: the payload goes out in batches (one writev each, no copy), and the
 * next batch waits for 'drain' when write() said false.
 */
import type { Writable } from 'node:stream';
import { DotStuffer, END_OF_DATA } from './dot-codec.js';
import { writeAll } from './socket-write.js';

/** The payload goes out in writes of about this size (one writev each). */
export const PAYLOAD_WRITE_BATCH_BYTES = 256 * 1024;

/** What a payload is read from (a spool, a rewritten message): its bytes in order, unstuffed. */
export interface PayloadSource {
  open(): AsyncIterable<Buffer>;
}

export class WriterBusyError extends Error {
  constructor() {
    super('a payload owns this connection: nothing else may be written until its final dot');
  }
}

export class StuffedWriter {
  private lease: PayloadLease | undefined;

  constructor(readonly socket: Writable) {}

  /** True from a payload's opening line to its final dot (or its release). */
  get streaming(): boolean {
    return this.lease !== undefined;
  }

  /** A command or a reply; false means the caller waits for 'drain'. Throws while a payload streams. */
  write(bytes: Buffer): boolean {
    if (this.lease !== undefined) throw new WriterBusyError();
    return this.socket.write(bytes);
  }

  /**
   * A keepalive line: written only between payloads and when the peer reads what it was
   * sent (one that does not is not kept alive at the cost of memory). True when written.
   */
  keepalive(bytes: Buffer): boolean {
    if (this.lease !== undefined || this.socket.destroyed || !this.socket.writable || this.socket.writableNeedDrain) return false;
    this.socket.write(bytes);
    return true;
  }

  /** Writes the payload's opening (DATA, "+OK ...") and takes the socket until the lease ends. */
  begin(opening: readonly Buffer[]): PayloadLease {
    if (this.lease !== undefined) throw new WriterBusyError();
    const lease = new PayloadLease(this, () => {
      if (this.lease === lease) this.lease = undefined;
    });
    this.lease = lease;
    // One write (a writev) for the whole opening: a status line and its CRLF are not two syscalls.
    this.socket.cork();
    for (const piece of opening) this.socket.write(piece);
    this.socket.uncork();
    return lease;
  }
}

export class PayloadLease {
  private ended = false;

  constructor(
    private readonly writer: StuffedWriter,
    private readonly onEnd: () => void,
  ) {}

  /**
   * Streams `message` re-stuffed, then the final dot, then ends the lease. `beforeLastWrite`
   * runs just before the write that carries the dot (the caller registers its wait for the
   * final reply there, so a fast reply cannot arrive unexpected).
   */
  async send(message: PayloadSource, beforeLastWrite?: () => void): Promise<void> {
    const socket = this.writer.socket;
    try {
      const stuffer = new DotStuffer();
      let batch: Buffer[] = [];
      let batchBytes = 0;
      for await (const chunk of message.open()) {
        if (this.ended) throw new Error('payload lease ended while streaming');
        batch.push(...stuffer.stuff(chunk));
        batchBytes += chunk.length;
        if (batchBytes < PAYLOAD_WRITE_BATCH_BYTES) continue;
        await writeAll(socket, batch);
        batch = [];
        batchBytes = 0;
      }
      beforeLastWrite?.();
      await writeAll(socket, [...batch, ...stuffer.end(), END_OF_DATA]);
    } finally {
      this.release();
    }
  }

  /**
   * Relays a payload as it arrives (POP3 RETR/TOP/LIST/UIDL uninspected): `pump` hands each
   * batch of unstuffed content to its `write`, which sends it re-stuffed at once and waits
   * for 'drain' when needed; then the final dot, then the lease ends. Nothing is batched
   * across pieces, so a slow source reaches the peer at its own pace.
   */
  async relay(pump: (write: (content: readonly Buffer[]) => Promise<void>) => Promise<void>): Promise<void> {
    const socket = this.writer.socket;
    try {
      const stuffer = new DotStuffer();
      await pump((content) => {
        if (this.ended) throw new Error('payload lease ended while streaming');
        return writeAll(socket, content.flatMap((piece) => stuffer.stuff(piece)));
      });
      await writeAll(socket, [...stuffer.end(), END_OF_DATA]);
    } finally {
      this.release();
    }
  }

  /** Ends the lease without a payload (the opening was refused, or the connection failed). */
  release(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
  }
}
