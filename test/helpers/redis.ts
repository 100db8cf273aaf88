/**
 * A real redis-server (Debian's package) for the fleet tests: on 127.0.0.1 at a free
 * port, no persistence (--save '' --appendonly no). Ready when it logs that it accepts
 * connections (an event, not a sleep); kill() stops it with SIGKILL (a crash) and
 * resolves once it has exited; restart() starts it again on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Test } from 'tap';
import { freePort } from './smtp-sink.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisServer {
  port: number;
  url: string;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

async function run(port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
  });
  return child;
}

export async function startRedis(t: Test): Promise<RedisServer> {
  const port = await freePort();
  let child = await run(port);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: async () => {
      const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve();
      child.kill('SIGKILL');
      await exited;
    },
    restart: async () => {
      child = await run(port);
    },
  };
}
