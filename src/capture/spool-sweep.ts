/**
 * Removes spool files that no living session owns. A spool file is named
 * `mailmoat-<pid>-<hex>.eml` (capture/spool.ts) and normally removed by its
 * session; a process killed with SIGKILL, or one that exits without draining,
 * leaves its files behind, full of mail. So:
 * - a process that exits removes its own files (removeOwnSpoolFiles, on 'exit');
 * - the supervisor (or a single process) sweeps at start, after each worker's
 *   death, and when it stops: every file whose owner pid is not alive goes.
 *
 * The owner is judged by pid alone: a spool folder must not be shared between
 * mailmoat instances in different PID namespaces (containers).
 */
import { readdirSync, rmSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from '../process-alive.js';

const SPOOL_FILE_NAME = /^mailmoat-(\d+)-[0-9a-f]+\.eml$/;

export interface SpoolSweep {
  files: number;
  bytes: number;
}

/** Where sessions spool (`spool.dir`, or the system temp folder when it is empty), as the listener decides. */
export const spoolDirOf = (spool: { readonly dir: string }): string => spool.dir || tmpdir();

/** The pid that owns a spool file name, or undefined when it is not a spool file. */
export function spoolFileOwner(name: string): number | undefined {
  const match = SPOOL_FILE_NAME.exec(name);
  return match === null ? undefined : Number(match[1]);
}

/** Removes the spool files in `dir` whose owner is not alive (a missing folder holds none). */
export async function sweepSpool(dir: string): Promise<SpoolSweep> {
  const swept: SpoolSweep = { files: 0, bytes: 0 };
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  for (const name of names) {
    const owner = spoolFileOwner(name);
    if (owner === undefined || owner === process.pid || isAlive(owner)) continue;
    const path = join(dir, name);
    const size = await stat(path).then((info) => info.size, () => 0);
    await rm(path, { force: true });
    swept.files++;
    swept.bytes += size;
  }
  return swept;
}

/** Synchronous, for process.on('exit'): removes this process's own spool files. */
export function removeOwnSpoolFiles(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) if (spoolFileOwner(name) === process.pid) rmSync(join(dir, name), { force: true });
}
