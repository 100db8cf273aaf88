/**
 * The decoder of a part whose transfer encoding is an identity (7bit, 8bit, binary or
 * none, RFC 2045 6.2): its body bytes are its content. A stream.PassThrough per part
 * (mailsplit's getDecoder) costs a Duplex, its buffers and a tick per chunk for no
 * work; this hands each chunk on synchronously, with the events the walk listens to
 * ('data', then 'end'). It does not pause: a part whose reader must hold it back (an
 * attached message, decoded-feed.ts) keeps mailsplit's stream.
 */
import { EventEmitter } from 'node:events';

export class IdentityDecoder extends EventEmitter {
  private ended = false;

  /** Emits `chunk` as 'data' before returning (a stream's write would call back only later). */
  write(chunk: Buffer): void {
    if (this.ended) throw new Error('write after end');
    if (chunk.length > 0) this.emit('data', chunk);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('end');
  }
}
