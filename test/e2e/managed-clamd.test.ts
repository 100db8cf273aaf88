// antivirus.clamd: managed — mailmoat starts clamd on a database folder, scans with it, restarts
// it when it dies (scans tempfail meanwhile, never pass), and says clearly when clamd is missing.
import t from 'tap';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { EICAR } from '../helpers/clamd.js';
import { eicarSignature } from '../../src/demo/samples.js';
import { stopStaleClamds } from '../../src/inspect/managed-clamd.js';
import { isAlive } from '../../src/process-alive.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { freePort } from '../helpers/smtp-sink.js';

const commandLine = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1').includes(') Z ') ? '<defunct>' : readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return '';
  }
};

const message = Buffer.from(
  ['From: a@example.org', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'hi', '--b', 'Content-Type: application/octet-stream; name="t.bin"', 'Content-Transfer-Encoding: base64', '', Buffer.from(EICAR).toString('base64'), '--b--', ''].join('\r\n'),
);
const source = { size: message.length, open: async function* () { yield message; } };

async function database(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-signatures-'));
  await writeFile(join(dir, 'test.ndb'), eicarSignature('Mailmoat.Test.EICAR'));
  return dir;
}

t.test('managed clamd scans, is restarted when it dies, and stops with the inspector', async (t) => {
  const policy = parsePolicyText(`antivirus:\n  clamd: managed\n  managed:\n    database_dir: ${await database()}\n`, 'test');
  const inspector = await createMailInspector(policy);
  t.teardown(() => inspector.close());
  const first = await inspector.examine(source);
  t.equal(first.verdict.action, 'rewrite', 'EICAR found by the managed clamd');
  if (first.verdict.action === 'rewrite') await first.verdict.message.dispose();

  const address = inspector.scanners[0]?.address;
  const config = address?.kind === 'unix' ? join(dirname(address.path), 'clamd.conf') : '';
  execFileSync('pkill', ['-KILL', '-f', config]);
  await sleep(100);
  const down = await inspector.examine(source);
  t.equal(down.verdict.action, 'tempfail', 'while clamd is down: tempfail');
  let recovered = false;
  for (let attempt = 0; attempt < 60 && !recovered; attempt++) {
    await sleep(250);
    const again = await inspector.examine(source);
    if (again.verdict.action === 'rewrite') {
      recovered = true;
      await again.verdict.message.dispose();
    }
  }
  t.ok(recovered, 'clamd was restarted and scanning recovered by itself');
  await inspector.close();
  t.throws(() => execFileSync('pgrep', ['-f', config]), 'no clamd left running after close');
});

t.test('clamd not installed: a clear error naming the package', async (t) => {
  const policy = parsePolicyText(`antivirus:\n  clamd: managed\n  managed:\n    database_dir: ${await database()}\n`, 'test');
  await t.rejects(createMailInspector(policy, { clamdPath: '/nonexistent/clamd' }), /clamd is not installed .*apt-get install clamav-daemon, or set antivirus\.clamd: off/);
});

t.test('the managed clamd dies with the mailmoat that started it, killed by SIGKILL', async (t) => {
  const running = await startMailmoat(t, await freePort(), `workers: 1\nantivirus:\n  clamd: managed\n  managed:\n    database_dir: ${await database()}\n`);
  const answering = await running.logged('clamd answers');
  const folder = dirname(String(answering.detail));
  const clamdPid = Number((await readFile(join(folder, 'clamd.pid'), 'latin1')).trim());
  t.ok(isAlive(clamdPid), `clamd runs (pid ${clamdPid})`);
  running.child.kill('SIGKILL');
  await running.exited;
  // pdeathsig: the kernel sends clamd SIGTERM when its parent dies; clamd then exits on its own.
  while (isAlive(clamdPid) && !commandLine(clamdPid).includes('<defunct>')) await sleep(50);
  t.pass('clamd is gone');
  await stopStaleClamds(dirname(folder));
  t.notOk(existsSync(folder), 'the next start removes the folder the killed supervisor left');
});

t.test('a start stops a clamd left by an owner that is gone, and leaves a living owner\'s alone', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-stale-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const stale = join(dir, 'mailmoat-clamd-stale');
  const owned = join(dir, 'mailmoat-clamd-owned');
  const started: ChildProcess[] = [];
  for (const [folder, owner] of [[stale, spawnSync('true').pid], [owned, process.pid]] as const) {
    await mkdir(folder);
    // Something whose command line names the folder's clamd.conf, as the real one does.
    const child = spawn('sh', ['-c', 'sleep 600', join(folder, 'clamd.conf')], { stdio: 'ignore' });
    started.push(child);
    await once(child, 'spawn');
    await writeFile(join(folder, 'owner.pid'), `${owner}\n`);
    await writeFile(join(folder, 'clamd.pid'), `${child.pid}\n`);
  }
  t.teardown(() => started.forEach((child) => child.kill('SIGKILL')));
  const events: string[] = [];
  const exited = once(started[0] as ChildProcess, 'exit');
  await stopStaleClamds(dir, (event) => events.push(event));
  t.same(await exited, [null, 'SIGKILL'], 'the stale one is stopped');
  t.same(events, ['stale managed clamd stopped']);
  t.notOk(existsSync(stale), 'and its folder removed');
  t.ok(existsSync(owned) && started[1]?.exitCode === null, 'a living owner keeps its clamd');
});
