/**
 * `antivirus.clamd: managed`: mailmoat runs clamd itself, for the demo and the
 * sidecar container. It writes a clamd.conf (its own UNIX socket, the given
 * database folder, AlertEncrypted and AlertExceedsMax on, StreamMaxLength matched
 * to antivirus.max_scan_bytes), starts clamd in the foreground, waits until it
 * answers, and restarts it (with a growing delay) whenever it exits. While it is
 * down, scans fail and the antivirus failure policy applies (tempfail by default).
 *
 * A clamd must never outlive the mailmoat that started it (its temporary folder
 * holds parts of mail): it runs under `setpriv --pdeathsig TERM` (util-linux), so
 * the kernel stops it when its parent dies, even by SIGKILL; and each start stops
 * and removes what a killed predecessor left (its folder names the owner's pid in
 * `owner.pid`, clamd's own pid in `clamd.pid`).
 *
 * A database folder with no signatures yet (a container whose freshclam has not
 * finished its first download) is waited for, with one log line, instead of a
 * clamd that would exit at once; mailmoat listens only once clamd answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClamdAddress } from './clamd.js';
import { isAlive } from '../process-alive.js';

export const DEFAULT_CLAMD_PATH = '/usr/sbin/clamd';
/** util-linux's setpriv: sets the parent-death signal, then executes clamd in its place. */
const SETPRIV_PATH = '/usr/bin/setpriv';
const FOLDER_PREFIX = 'mailmoat-clamd-';
/** Loading a full signature database takes tens of seconds; a test database, a second. */
const START_TIMEOUT_MS = 180_000;
const RESTART_DELAY_MS = { first: 1000, max: 30_000 };
/** How often a database folder without signatures is looked at again (freshclam renames finished files into it). */
const SIGNATURES_POLL_MS = 2000;
/** The names of the files clamd loads signatures from (ClamAV's database formats); freshclam's other files are not. */
const SIGNATURE_FILE = /\.(cvd|cld|cud|hdb|hsb|hdu|hsu|mdb|msb|mdu|msu|ndb|ndu|ldb|ldu|idb|cdb|pdb|gdb|wdb|yar|yara)$/;

export interface ManagedClamdOptions {
  databaseDir: string;
  streamMaxBytes: number;
  clamdPath?: string;
  onEvent?: (event: string, detail: string) => void;
}

export class ManagedClamd {
  private child: ChildProcess | undefined;
  private dir = '';
  private stopping = false;
  private running = false;
  private restartDelay = RESTART_DELAY_MS.first;

  constructor(private readonly options: ManagedClamdOptions) {}

  get socket(): string {
    return join(this.dir, 'clamd.sock');
  }

  async start(): Promise<ClamdAddress> {
    const clamd = this.options.clamdPath ?? DEFAULT_CLAMD_PATH;
    if (!existsSync(clamd)) throw new Error(`antivirus.clamd is "managed" but clamd is not installed (${clamd}): apt-get install clamav-daemon, or set antivirus.clamd: off`);
    if (!existsSync(this.options.databaseDir)) throw new Error(`antivirus.managed.database_dir ${this.options.databaseDir} does not exist: run freshclam, or point it at a folder of signatures`);
    await stopStaleClamds(tmpdir(), this.options.onEvent);
    await this.waitForSignatures();
    this.dir = await mkdtemp(join(tmpdir(), FOLDER_PREFIX));
    await writeFile(join(this.dir, 'owner.pid'), `${process.pid}\n`);
    await writeFile(
      join(this.dir, 'clamd.conf'),
      [
        `LocalSocket ${this.socket}`,
        `DatabaseDirectory ${this.options.databaseDir}`,
        `TemporaryDirectory ${this.dir}`,
        `LogFile ${join(this.dir, 'clamd.log')}`,
        'Foreground yes',
        'AlertEncrypted yes',
        'AlertExceedsMax yes',
        `StreamMaxLength ${this.options.streamMaxBytes}`,
        '',
      ].join('\n'),
    );
    await this.launch();
    return { kind: 'unix', path: this.socket };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000, undefined, { ref: false })]);
    }
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true });
  }

  private async waitForSignatures(): Promise<void> {
    const dir = this.options.databaseDir;
    let waiting = false;
    while (!(await readdir(dir)).some((name) => SIGNATURE_FILE.test(name))) {
      if (this.stopping) throw new Error(`stopped while waiting for signatures in ${dir}`);
      if (!waiting) this.options.onEvent?.('clamd waits for signatures', `${dir} holds no signature database yet (freshclam's first download): clamd starts, and mail is accepted, once one appears`);
      waiting = true;
      await sleep(SIGNATURES_POLL_MS);
    }
    if (waiting) this.options.onEvent?.('clamd signatures found', dir);
  }

  private async launch(): Promise<void> {
    await rm(this.socket, { force: true });
    const command = [this.options.clamdPath ?? DEFAULT_CLAMD_PATH, `--config-file=${join(this.dir, 'clamd.conf')}`];
    const child = existsSync(SETPRIV_PATH) ? spawn(SETPRIV_PATH, ['--pdeathsig', 'TERM', '--', ...command], { stdio: 'ignore' }) : spawn(command[0] as string, command.slice(1), { stdio: 'ignore' });
    this.child = child;
    if (child.pid !== undefined) await writeFile(join(this.dir, 'clamd.pid'), `${child.pid}\n`);
    child.once('exit', (code) => {
      if (this.stopping || !this.running) return;
      this.options.onEvent?.('clamd exited', `code ${code}; restarting in ${this.restartDelay} ms`);
      setTimeout(() => void this.launch().catch((error: Error) => this.options.onEvent?.('clamd restart failed', error.message)), this.restartDelay).unref();
      this.restartDelay = Math.min(this.restartDelay * 2, RESTART_DELAY_MS.max);
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await answers(this.socket))) {
      if (child.exitCode !== null) throw new Error(`clamd exited while starting (code ${child.exitCode}); see ${join(this.dir, 'clamd.log')}`);
      if (Date.now() > deadline) throw new Error(`clamd did not answer within ${START_TIMEOUT_MS / 1000} s`);
      await sleep(100);
    }
    this.running = true;
    this.restartDelay = RESTART_DELAY_MS.first;
    this.options.onEvent?.('clamd answers', this.socket);
  }
}

/**
 * Stops the clamd of every managed folder whose owner is gone (a mailmoat killed with
 * SIGKILL, before pdeathsig, or on a kernel without it) and removes the folder.
 */
export async function stopStaleClamds(dir: string, onEvent?: (event: string, detail: string) => void): Promise<void> {
  for (const name of await readdir(dir).catch(() => [])) {
    if (!name.startsWith(FOLDER_PREFIX)) continue;
    const folder = join(dir, name);
    const owner = await readPid(join(folder, 'owner.pid'));
    if (owner === undefined || isAlive(owner)) continue;
    const clamd = await readPid(join(folder, 'clamd.pid'));
    if (clamd !== undefined && isAlive(clamd) && commandLineOf(clamd).includes(join(folder, 'clamd.conf'))) {
      process.kill(clamd, 'SIGKILL');
      onEvent?.('stale managed clamd stopped', `pid ${clamd}, left by pid ${owner}`);
    }
    await rm(folder, { recursive: true, force: true });
  }
}

async function readPid(file: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(file, 'latin1').catch(() => ''), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** True when something accepts connections on the UNIX socket. */
export function answers(socket: string): Promise<boolean> {
  if (!existsSync(socket)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const probe = connect({ path: socket });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
