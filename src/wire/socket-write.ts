/**
 * Backpressure-respecting writes: never write past `write() === false` without
 * waiting for 'drain'; a socket that closes while we wait rejects the wait. And the
 * last word: a closed session's socket is destroyed if its peer never reads it.
 */
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';

/** How long a closed session waits for the downstream to read its last reply before destroying the socket. */
const LINGER_AFTER_CLOSE_MS = 5000;

export function drainOrClose(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error): void => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = (): void => settle();
    const onClose = (): void => settle(new Error('stream closed while waiting for drain'));
    stream.on('drain', onDrain);
    stream.on('close', onClose);
  });
}

/** Writes the pieces as one batch (cork: a single writev, no copy), then waits for 'drain' if needed. */
export async function writeAll(stream: Writable, pieces: readonly Buffer[]): Promise<void> {
  if (stream.destroyed || !stream.writable) throw new Error('stream is not writable');
  stream.cork();
  let flowing = true;
  for (const piece of pieces) flowing = stream.write(piece) && flowing;
  stream.uncork();
  if (!flowing) await drainOrClose(stream);
}

/** A peer that never reads its last reply must not hold the socket open forever. */
export function destroyAfterLinger(socket: Socket): void {
  if (socket.destroyed) return;
  const reaper = setTimeout(() => socket.destroy(), LINGER_AFTER_CLOSE_MS);
  reaper.unref();
  socket.once('close', () => clearTimeout(reaper));
}
