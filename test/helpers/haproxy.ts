/**
 * Debian's HAProxy in front of several mailmoat nodes (`mode tcp`, round robin,
 * send-proxy-v2), as README "Fleet" shows. Started with -D: the launcher exits once
 * the frontend is bound (an event, not a poll); the daemon's pid file lets the
 * teardown stop it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort } from './smtp-sink.js';

export const HAPROXY = '/usr/sbin/haproxy';

/** The configuration the fleet test runs (and the README shows). */
export function fleetHaproxyConfig(frontendPort: number, nodePorts: readonly number[]): string {
  return [
    'global',
    '  maxconn 1000',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 5m',
    '  timeout server 5m',
    'frontend smtp',
    `  bind 127.0.0.1:${frontendPort}`,
    '  default_backend mailmoat',
    'backend mailmoat',
    '  balance roundrobin',
    ...nodePorts.map((port, index) => `  server node${index + 1} 127.0.0.1:${port} send-proxy-v2`),
    '',
  ].join('\n');
}

export async function startHaproxy(t: Test, nodePorts: readonly number[]): Promise<{ port: number; config: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-haproxy-'));
  const port = await freePort();
  const config = fleetHaproxyConfig(port, nodePorts);
  const pidFile = join(dir, 'haproxy.pid');
  await writeFile(join(dir, 'haproxy.cfg'), config);
  t.teardown(async () => {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rm(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    execFile(HAPROXY, ['-D', '-p', pidFile, '-f', join(dir, 'haproxy.cfg')], (error, _stdout, stderr) => (error ? reject(new Error(`haproxy did not start: ${stderr}`)) : resolve()));
  });
  return { port, config };
}
