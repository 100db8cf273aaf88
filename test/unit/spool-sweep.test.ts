// The spool sweep: files of processes that are gone are removed (they hold mail), files of living
// processes and anything that is not a spool file stay; a process removes its own files on exit.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeOwnSpoolFiles, spoolFileOwner, sweepSpool } from '../../src/capture/spool-sweep.js';

t.test('spool file names', async (t) => {
  t.equal(spoolFileOwner('mailmoat-1234-0123456789abcdef.eml'), 1234);
  t.equal(spoolFileOwner('mailmoat-1234-0123456789abcdef.eml.bak'), undefined);
  t.equal(spoolFileOwner('mailmoat-clamd-abc'), undefined);
  t.equal(spoolFileOwner('notes.eml'), undefined);
});

t.test('sweep: only what a dead process left', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-sweep-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dead = spawnSync('true').pid;
  const living = spawn('sleep', ['600']);
  t.teardown(() => living.kill('SIGKILL'));
  await once(living, 'spawn');
  const deadFiles = [`mailmoat-${dead}-00000000000000aa.eml`, `mailmoat-${dead}-00000000000000bb.eml`];
  for (const name of deadFiles) await writeFile(join(dir, name), 'From: a\r\n\r\nmail of a killed worker\r\n');
  const kept = [`mailmoat-${living.pid}-00000000000000cc.eml`, `mailmoat-${process.pid}-00000000000000dd.eml`, 'mailmoat-notes.txt', 'other.eml'];
  for (const name of kept) await writeFile(join(dir, name), 'x');
  const swept = await sweepSpool(dir);
  t.same(swept, { files: 2, bytes: 2 * 'From: a\r\n\r\nmail of a killed worker\r\n'.length });
  t.same((await readdir(dir)).sort(), [...kept].sort(), 'a living owner keeps its files; other names are not touched');
  t.same(await sweepSpool(join(dir, 'missing')), { files: 0, bytes: 0 }, 'a missing folder holds nothing');

  removeOwnSpoolFiles(dir);
  t.same((await readdir(dir)).sort(), kept.filter((name) => !name.includes(`-${process.pid}-`)).sort(), 'on exit, a process removes its own');
});
