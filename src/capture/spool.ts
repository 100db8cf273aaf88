/**
 * The payload buffer for one message: memory up to a threshold, then a temporary
 * file created with mode 0600 (never readable by other local users) and removed
 * by dispose(). Writes report backpressure like a Writable: write() returns
 * false once the caller must await drained() before writing more.
 *
 * Invariant: open() yields exactly the bytes written, in order.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
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
  size = 0;

  constructor(private readonly options: SpoolOptions) {}

  /** Appends bytes; false means: await drained() before the next write. */
  write(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
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
    await once(file, 'drain');
  }

  /** Flushes the file, if any; throws the first write error. */
  async finish(): Promise<void> {
    const file = this.file;
    if (file !== undefined && !file.writableFinished) {
      file.end();
      await once(file, 'finish');
    }
    if (this.failure) throw this.failure;
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
    file.on('error', (error: Error) => {
      this.failure ??= error;
    });
    return file;
  }
}
