/**
 * A real clamd (Debian clamav-daemon) started by the test on a temporary UNIX
 * socket, with a signature database the test builds (no freshclam here): an EICAR
 * body signature, and the MD5 hash of clam.exe from Debian's clamav-testfiles,
 * which ClamAV also finds inside every packed and archived variant of that package.
 * AlertEncrypted and AlertExceedsMax are on, as mailmoat's managed clamd has them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { answers } from '../../src/inspect/managed-clamd.js';
import { EICAR_TEST_STRING, eicarSignature } from '../../src/demo/samples.js';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'tap';

export const CLAMAV_TESTFILES = '/usr/share/clamav-testfiles';
/** The EICAR test string (assembled at run time by the demo's samples, never stored whole). */
export const EICAR = EICAR_TEST_STRING;

export interface TestClamd {
  socket: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts clamd; `socketPath` reuses a path (a restarted clamd on the same address). */
export async function startClamd(t: Test, extraConfig: string[] = [], socketPath?: string): Promise<TestClamd> {
  if (!existsSync('/usr/sbin/clamd')) throw new Error('clamd is not installed: apt-get install clamav-daemon (bash scripts/setup.sh test does)');
  const clamExe = join(CLAMAV_TESTFILES, 'clam.exe');
  if (!existsSync(clamExe)) throw new Error('clamav-testfiles is not installed: apt-get install clamav-testfiles');
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-clamd-'));
  await mkdir(join(dir, 'db'));
  await writeFile(join(dir, 'db', 'mailmoat-test.ndb'), eicarSignature('Mailmoat.Test.EICAR'));
  const exe = readFileSync(clamExe);
  await writeFile(join(dir, 'db', 'mailmoat-test.hdb'), `${createHash('md5').update(exe).digest('hex')}:${exe.length}:Mailmoat.Test.ClamExe\n`);
  const socket = socketPath ?? join(dir, 'clamd.sock');
  const config = join(dir, 'clamd.conf');
  await writeFile(
    config,
    [`LocalSocket ${socket}`, `DatabaseDirectory ${join(dir, 'db')}`, `TemporaryDirectory ${dir}`, `LogFile ${join(dir, 'clamd.log')}`, 'Foreground yes', 'AlertEncrypted yes', 'AlertExceedsMax yes', 'StreamMaxLength 10M', ...extraConfig, ''].join('\n'),
  );
  await rm(socket, { force: true }); // a clamd that was killed leaves its socket file behind
  const child = spawn('/usr/sbin/clamd', [`--config-file=${config}`], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30000;
  while (!(await answers(socket))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const log = existsSync(join(dir, 'clamd.log')) ? readFileSync(join(dir, 'clamd.log'), 'utf8') : '';
      throw new Error(`clamd did not start: ${log.slice(-2000)}`);
    }
    await sleep(50);
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
  };
  t.teardown(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { socket, child, stop };
}
