/**
 * `mailmoat start` as a child process, the way a service manager runs it: a policy
 * file in a temporary folder (one SMTP listener in front of the given upstream, plus
 * the test's extra YAML), its JSON log parsed line by line, and its exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort } from './smtp-sink.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

export interface Running {
  child: ChildProcess;
  port: number;
  policy: string;
  /** Resolves when a log line with this msg has appeared (after `from` lines); rejects if the process exits first. */
  logged(message: string, from?: number): Promise<Record<string, unknown>>;
  /** Resolves with the first `count` log lines with this msg (after `from` lines); rejects if the process exits first. */
  loggedTimes(message: string, count: number, from?: number): Promise<Record<string, unknown>[]>;
  lines(): number;
  log(): Record<string, unknown>[];
  /** Every stdout line as written (for strict parsers). */
  rawLines(): string[];
  /** The exit code, once the process has exited (registered at spawn: it may exit early). */
  exited: Promise<number | null>;
}

/** `moreListeners`: YAML list items added after the first listener (each starting with "  - protocol: "). */
export async function startMailmoat(t: Test, sinkPort: number, extra: string, moreListeners = ''): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-ops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const policy = join(dir, 'policy.yaml');
  const write = (more: string) => writeFile(policy, `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:${sinkPort}\n${moreListeners}quarantine:\n  dir: ./quarantine\n${more.includes('admin:') ? '' : 'admin:\n  listen: ""\n'}${more}`);
  await write(extra);
  const child = spawn(process.execPath, [CLI, 'start', '--policy', policy], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const log: Record<string, unknown>[] = [];
  const raw: string[] = [];
  // Every new line (and the exit) wakes the waiters: a wait ends on an event, never on a clock;
  // the test runner's own timeout is the only bound.
  const changed = new EventEmitter();
  let exitCode: number | null | undefined;
  const exited = once(child, 'exit').then(([code]) => {
    exitCode = code as number | null;
    changed.emit('change');
    return exitCode;
  });
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      raw.push(line);
      log.push(JSON.parse(line) as Record<string, unknown>);
    }
    changed.emit('change');
  });
  const loggedTimes = (message: string, count: number, from = 0): Promise<Record<string, unknown>[]> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = log.slice(from).filter((line) => line.msg === message);
        if (found.length >= count) {
          changed.off('change', check);
          resolve(found.slice(0, count));
        } else if (exitCode !== undefined) {
          changed.off('change', check);
          reject(new Error(`mailmoat exited (${exitCode}) with ${found.length} of ${count} "${message}" in the log: ${JSON.stringify(log.slice(from))}`));
        }
      };
      changed.on('change', check);
      check();
    });
  const logged = async (message: string, from = 0): Promise<Record<string, unknown>> => {
    const [found] = await loggedTimes(message, 1, from);
    if (found === undefined) throw new Error(`no "${message}" in the log`);
    return found;
  };
  await logged('listening');
  // With workers (the default: one per core), wait until every one listens.
  const supervising = log.find((line) => line.msg === 'supervising workers');
  if (supervising !== undefined) await loggedTimes('worker listening', Number(supervising.workers));
  return { child, port, policy, logged, loggedTimes, lines: () => log.length, log: () => log, rawLines: () => raw, exited };
}
