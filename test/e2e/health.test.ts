// `mailmoat health` asks the live proxy (/healthz): ready with two workers listening, a
// real clamd answering and the spool writable; not ready once that clamd stops, when the
// spool folder is missing, or when nothing answers. `check` with `clamd: managed` starts no
// clamd of its own (it validates and says the running proxy manages it).
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startClamd } from '../helpers/clamd.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { SmtpSink, freePort } from '../helpers/smtp-sink.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function mailmoat(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

t.test('workers: 2 with a real clamd: ready, then not ready once clamd stops', async (t) => {
  const clamd = await startClamd(t);
  const sink = await SmtpSink.start(t);
  const adminPort = await freePort();
  const running = await startMailmoat(t, sink.port, `workers: 2\nantivirus:\n  clamd: unix:${clamd.socket}\nadmin:\n  listen: 127.0.0.1:${adminPort}\n`);
  await running.logged('admin listener: /metrics, /healthz, status page on /');
  const ready = await mailmoat(['health', '--admin', `127.0.0.1:${adminPort}`]);
  t.equal(ready.code, 0, ready.stderr);
  t.match(ready.stdout, /^ready: http:\/\/127\.0\.0\.1:\d+\/healthz: 200 /);
  t.match(JSON.parse(ready.stdout.slice(ready.stdout.indexOf('{'))), { ok: true, listeners: '2 of 2 workers listening', scanners: { [`unix:${clamd.socket}`]: true }, spool: /writable$/ });
  // The policy names the admin listener too.
  t.equal((await mailmoat(['health', '--policy', running.policy])).code, 0, 'admin.listen from --policy');

  await clamd.stop();
  const down = await mailmoat(['health', '--admin', `127.0.0.1:${adminPort}`]);
  t.equal(down.code, 1, 'no scanner answers: not ready');
  t.match(down.stderr, /^not ready: .*: 503 /);
  t.match(JSON.parse(down.stderr.slice(down.stderr.indexOf('{'))), { ok: false, scanners: { [`unix:${clamd.socket}`]: false } });
  running.child.kill('SIGTERM');
  t.equal(await running.exited, 0);
});

t.test('a spool folder that cannot be written: not ready', async (t) => {
  const sink = await SmtpSink.start(t);
  const adminPort = await freePort();
  const running = await startMailmoat(t, sink.port, `workers: 1\nspool:\n  dir: /nonexistent/mailmoat-spool\nadmin:\n  listen: 127.0.0.1:${adminPort}\n`);
  const result = await mailmoat(['health', '--admin', `127.0.0.1:${adminPort}`]);
  t.equal(result.code, 1);
  t.match(JSON.parse(result.stderr.slice(result.stderr.indexOf('{'))), { ok: false, listeners: /^listening on 127\.0\.0\.1:\d+$/, spool: /ENOENT/ });
  running.child.kill('SIGTERM');
  t.equal(await running.exited, 0);
});

t.test('nothing listening: not ready, exit 1', async (t) => {
  const result = await mailmoat(['health', '--admin', `127.0.0.1:${await freePort()}`]);
  t.equal(result.code, 1);
  t.match(result.stderr, /not ready: .*ECONNREFUSED/);
  const off = await mailmoat(['health', '--admin', 'nonsense']);
  t.equal(off.code, 1);
  t.match(off.stderr, /--admin: expected host:port/);
});

t.test('check with clamd: managed starts no clamd', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-health-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const temp = join(dir, 'tmp');
  const signatures = join(dir, 'db');
  await mkdir(temp);
  await mkdir(signatures);
  const policy = join(dir, 'managed.yaml');
  await writeFile(policy, `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:2525\n    upstream: 127.0.0.1:25\nantivirus:\n  clamd: managed\n  managed:\n    database_dir: ${signatures}\n`);
  const result = await mailmoat(['check', '--policy', policy], { ...process.env, TMPDIR: temp });
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /# antivirus: managed: mailmoat start runs \/usr\/sbin\/clamd .*not started by check/);
  t.same(await readdir(temp), [], 'no managed clamd folder was created (ManagedClamd makes one per clamd)');
  await writeFile(policy, `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:2525\n    upstream: 127.0.0.1:25\nantivirus:\n  clamd: managed\n  managed:\n    database_dir: ${join(dir, 'missing')}\n`);
  const missing = await mailmoat(['check', '--policy', policy]);
  t.equal(missing.code, 1, 'a missing signature folder fails check');
  t.match(missing.stdout, /database_dir .*missing does not exist/);
});
