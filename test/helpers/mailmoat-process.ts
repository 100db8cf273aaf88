/**
 * `mailmoat start` as a child process, the way a service manager runs it: a policy
 * file in a temporary folder (one SMTP listener in front of the given upstream, plus
 * the test's extra YAML), its JSON log parsed line by line, and its exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'tap';
import { freePort } from './smtp-sink.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

export interface Running {
  child: ChildProcess;
  port: number;
  policy: string;
  /** Resolves when a log line with this msg has appeared (after `from` lines). */
  logged(message: string, from?: number): Promise<Record<string, unknown>>;
  lines(): number;
  log(): Record<string, unknown>[];
  /** The exit code, once the process has exited (registered at spawn: it may exit early). */
  exited: Promise<number | null>;
}

export async function startMailmoat(t: Test, sinkPort: number, extra: string): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-ops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const policy = join(dir, 'policy.yaml');
  const write = (more: string) => writeFile(policy, `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:${sinkPort}\nquarantine:\n  dir: ./quarantine\n${more.includes('admin:') ? '' : 'admin:\n  listen: ""\n'}${more}`);
  await write(extra);
  const child = spawn(process.execPath, [CLI, 'start', '--policy', policy], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  t.teardown(() => child.kill('SIGKILL'));
  const log: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') log.push(JSON.parse(line) as Record<string, unknown>);
  });
  // Waits for the line itself (a loaded machine may take long to start), failing as soon as the process has exited.
  let exitedWith: number | null | undefined;
  void exited.then((code) => (exitedWith = code));
  const logged = async (message: string, from = 0): Promise<Record<string, unknown>> => {
    for (;;) {
      const found = log.slice(from).find((line) => line.msg === message);
      if (found !== undefined) return found;
      if (exitedWith !== undefined) throw new Error(`no "${message}" in the log (exit code ${exitedWith}): ${JSON.stringify(log.slice(from))}`);
      await sleep(25);
    }
  };
  await logged('listening');
  // With workers (the default: one per core), wait until every one listens.
  for (const deadline = Date.now() + 10000; Date.now() < deadline; await sleep(25)) {
    const supervising = log.find((line) => line.msg === 'supervising workers');
    if (supervising === undefined || log.filter((line) => line.msg === 'worker listening').length >= Number(supervising.workers)) break;
  }
  return { child, port, policy, logged, lines: () => log.length, log: () => log, exited };
}

