// A proxy that cannot serve must say so and exit: `start` exits 1 within seconds when a
// listener of any worker cannot bind (workers: 1 and 2) or when the policy has no listener,
// and `check` refuses a policy without listeners. A service manager then sees the failure.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function run(args: string[]): Promise<Exit> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

async function policyFile(t: Test, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-fail-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'policy.yaml');
  await writeFile(file, text);
  return file;
}

/** A port some other process holds. */
async function takenPort(t: Test): Promise<number> {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const address = holder.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}: a listener that cannot bind makes start exit 1`, async (t) => {
    const port = await takenPort(t);
    const policy = await policyFile(
      t,
      `workers: ${workers}\nadmin:\n  listen: ""\nlisteners:\n  - protocol: pop3\n    listen: 127.0.0.1:0\n    upstream: 127.0.0.1:110\n  - protocol: smtp\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:25\n`,
    );
    const result = await run(['start', '--policy', policy]);
    t.equal(result.code, 1, 'exit code 1');
    const lines = result.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    const fatal = lines.find((line) => line.msg === 'cannot start: exiting');
    t.match(fatal, { level: 60, reason: new RegExp(`EADDRINUSE.*${port}`) }, 'the fatal line names the address');
    if (workers === 2) {
      t.ok(lines.some((line) => line.msg === 'a worker cannot start: stopping'), 'the supervisor stops');
      t.match(lines.at(-1), { role: 'supervisor', msg: 'stopped' }, 'the supervisor exits last');
    } else {
      t.match(result.stderr, /EADDRINUSE/);
    }
  });
}

t.test('a policy without listeners: start and check exit 1 and say why', async (t) => {
  const policy = await policyFile(t, 'listeners: []\n');
  for (const command of ['start', 'check']) {
    const result = await run([command, '--policy', policy]);
    t.equal(result.code, 1, `${command}: exit 1`);
    t.match(result.stderr, /listeners: none: mailmoat would serve nothing/, `${command}: says why`);
  }
});

t.test('check binds each listen address: one this machine lacks fails, one in use is reported', async (t) => {
  const port = await takenPort(t);
  const taken = await policyFile(t, `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:25\n`);
  const inUse = await run(['check', '--policy', taken]);
  t.equal(inUse.code, 0, 'in use may be the running mailmoat: not a failure');
  t.match(inUse.stdout, new RegExp(`# listen 127\\.0\\.0\\.1:${port}: in use`));
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no machine has it.
  const foreign = await policyFile(t, 'listeners:\n  - protocol: smtp\n    listen: 192.0.2.7:2525\n    upstream: 127.0.0.1:25\n');
  const missing = await run(['check', '--policy', foreign]);
  t.equal(missing.code, 1);
  t.match(missing.stdout, /# listen 192\.0\.2\.7:2525: EADDRNOTAVAIL/);
});
