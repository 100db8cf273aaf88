/**
 * The payload buffer for one message: memory up to a threshold, then a temporary
 * file created with mode 0600 (never readable by other local users) and removed
 * by dispose(). Writes report backpressure like a Writable: write() returns
 * false once the caller must await drained() before writing more.
 *
 * Invariant: open() yields exactly the bytes written, in order.
 *
 * A write error (ENOSPC on a full disk, EIO) is remembered and never hangs a caller:
 * the partial file is removed at once (a full disk is freed for the next message),
 * later writes are dropped, and drained() and finish() reject with the first error,
 * so the session answers 451 4.3.0 at the final dot.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { drainOrClose } from '../wire/socket-write.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export interface SpoolOptions {
  dir: string;
  memoryThresholdBytes: number;
}

export class Spool {
  private chunks: Buffer[] = [];
  private file: WriteStream | undefined;
  private path: string | undefined;
  private failure: Error | undefined;
  /** The removal of a partial file after a write error; finish() waits for it. */
  private removal: Promise<void> | undefined;
  size = 0;

  constructor(private readonly options: SpoolOptions) {}

  /** Appends bytes; false means: await drained() before the next write. */
  write(chunk: Buffer): boolean {
    if (chunk.length === 0 || this.failure !== undefined) return true;
    this.size += chunk.length;
    if (this.file === undefined) {
      this.chunks.push(chunk);
      if (this.size <= this.options.memoryThresholdBytes) return true;
      this.file = this.openFile();
      const buffered = Buffer.concat(this.chunks);
      this.chunks = [];
      return this.file.write(buffered);
    }
    return this.file.write(chunk);
  }

  async drained(): Promise<void> {
    const file = this.file;
    if (this.failure) throw this.failure;
    if (file === undefined || !file.writableNeedDrain) return;
    // 'close' follows an error (the stream destroys itself), so a failure never leaves this waiting;
    // drainOrClose removes both of its listeners whichever comes first.
    await drainOrClose(file).catch(() => undefined);
    if (this.failure) throw this.failure;
  }

  /** Flushes the file, if any; throws the first write error. */
  async finish(): Promise<void> {
    const file = this.file;
    if (this.failure) {
      await this.removal;
      throw this.failure;
    }
    if (file !== undefined && !file.writableFinished) {
      file.end();
      await finished(file).catch((error: unknown) => {
        this.failure ??= error instanceof Error ? error : new Error(String(error));
      });
    }
    if (this.failure) {
      await this.removal;
      throw this.failure;
    }
  }

  /** The spooled bytes, in order; call after finish(). (Readable.from() makes a stream of it.) */
  async *open(): AsyncGenerator<Buffer> {
    if (this.path === undefined) {
      yield* this.chunks;
      return;
    }
    for await (const chunk of createReadStream(this.path, { highWaterMark: 64 * 1024 })) yield chunk as Buffer;
  }

  get onDisk(): boolean {
    return this.path !== undefined;
  }

  async dispose(): Promise<void> {
    this.chunks = [];
    const file = this.file;
    if (file !== undefined && !file.closed) {
      file.destroy();
      await once(file, 'close').catch(() => undefined);
    }
    if (this.path !== undefined) await rm(this.path, { force: true });
  }

  private openFile(): WriteStream {
    this.path = join(this.options.dir, `mailmoat-${process.pid}-${randomBytes(8).toString('hex')}.eml`);
    const file = createWriteStream(this.path, { flags: 'wx', mode: 0o600, highWaterMark: 64 * 1024 });
    const path = this.path;
    file.on('error', (error: Error) => {
      this.failure ??= error;
      this.chunks = [];
      // The stream closes its descriptor itself; the partial file goes now, not at dispose().
      this.removal = rm(path, { force: true }).catch(() => undefined);
    });
    return file;
  }
}
