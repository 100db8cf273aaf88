// deploy/mailmoat.service and its sysusers.d/tmpfiles.d pair, checked by systemd's own
// tools (Debian 12: systemd 252, whose systemd-analyze has `security --offline=yes`, so no
// running systemd is needed): `systemd-analyze verify` finds nothing (the command path is
// pointed at this checkout's build, the only change), `systemd-analyze security` rates the
// unit at most 4.0, KillMode=mixed; systemd-sysusers and systemd-tmpfiles, run on a scratch
// root, create the user, group and folders with the modes the unit expects.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const UNIT = join(process.cwd(), 'deploy', 'mailmoat.service');
const SYSUSERS = join(process.cwd(), 'deploy', 'mailmoat.sysusers');
const TMPFILES = join(process.cwd(), 'deploy', 'mailmoat.tmpfiles');
/** What the issue asks: "OK" in systemd-analyze's scale (0 safest .. 10 exposed). */
const MAX_EXPOSURE = 4.0;

function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr }));
  });
}

async function scratch(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-systemd-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('systemd-analyze verify: no finding', async (t) => {
  const dir = await scratch(t);
  // The unit names /usr/bin/mailmoat (an npm install -g); here the command is this checkout's build.
  const command = join(dir, 'mailmoat');
  await writeFile(command, `#!/bin/sh\nexec ${process.execPath} ${join(process.cwd(), 'dist', 'src', 'bin.js')} "$@"\n`);
  await chmod(command, 0o755);
  const unit = join(dir, 'mailmoat.service');
  const text = await readFile(UNIT, 'utf8');
  t.match(text, /^ExecStart=\/usr\/bin\/mailmoat start --policy \/etc\/mailmoat\/policy\.yaml$/m);
  await writeFile(unit, text.replaceAll('/usr/bin/mailmoat ', `${command} `));
  const verified = await run('systemd-analyze', ['verify', unit]);
  t.equal(verified.code, 0, verified.stderr);
  t.equal(verified.stderr.trim(), '', 'nothing reported');
  // The check can fail: a typo in a directive is reported.
  await writeFile(unit, text.replaceAll('/usr/bin/mailmoat ', `${command} `).replace('KillMode=mixed', 'KillMode=mixd'));
  t.match((await run('systemd-analyze', ['verify', unit])).stderr, /Failed to parse kill mode specification.*mixd/, 'a bad value is reported (on stderr: verify exits 0 for it)');
});

t.test('systemd-analyze security: at most 4.0, KillMode=mixed', async (t) => {
  const text = await readFile(UNIT, 'utf8');
  t.match(text, /^KillMode=mixed$/m, 'SIGTERM to the supervisor only: it drains the workers and its clamd');
  t.match(text, /^User=mailmoat$/m);
  const rated = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT]);
  const score = /Overall exposure level for mailmoat\.service: ([\d.]+) (\w+)/.exec(rated.stdout);
  t.ok(score, `a score: ${rated.stdout.slice(-300)} ${rated.stderr}`);
  t.ok(Number(score?.[1]) <= MAX_EXPOSURE, `exposure ${score?.[1]} ${score?.[2]} <= ${MAX_EXPOSURE}`);
});

t.test('sysusers.d and tmpfiles.d create the user and the folders', async (t) => {
  const root = await scratch(t);
  await mkdir(join(root, 'usr', 'lib', 'sysusers.d'), { recursive: true });
  await mkdir(join(root, 'usr', 'lib', 'tmpfiles.d'), { recursive: true });
  await mkdir(join(root, 'etc'));
  await mkdir(join(root, 'var', 'lib'), { recursive: true });
  await copyFile(SYSUSERS, join(root, 'usr', 'lib', 'sysusers.d', 'mailmoat.conf'));
  await copyFile(TMPFILES, join(root, 'usr', 'lib', 'tmpfiles.d', 'mailmoat.conf'));
  const users = await run('systemd-sysusers', [`--root=${root}`]);
  t.equal(users.code, 0, users.stderr);
  const passwd = (await readFile(join(root, 'etc', 'passwd'), 'utf8')).split('\n').find((line) => line.startsWith('mailmoat:'));
  t.match(passwd, /^mailmoat:x:(\d+):(\d+):[^:]*:\/var\/lib\/mailmoat:\/usr\/sbin\/nologin$/);
  const uid = Number(passwd?.split(':')[2]);
  const gid = Number(passwd?.split(':')[3]);
  const files = await run('systemd-tmpfiles', [`--root=${root}`, '--create']);
  t.equal(files.code, 0, files.stderr);
  const expected: [string, number, number, number][] = [
    ['etc/mailmoat', 0o750, 0, gid],
    ['var/lib/mailmoat', 0o750, uid, gid],
    ['var/lib/mailmoat/quarantine', 0o700, uid, gid],
  ];
  for (const [path, mode, owner, group] of expected) {
    const info = await stat(join(root, path));
    t.same([info.mode & 0o777, info.uid, info.gid], [mode, owner, group], `/${path}`);
  }
});
