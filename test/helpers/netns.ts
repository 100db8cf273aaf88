/**
 * A three-host network for transparent-proxy tests, built from Linux network namespaces the
 * test creates (as root) and removes at the end; only they carry traffic:
 *
 *   client ── veth ── gateway ── veth ── server
 *   10.N.1.2        10.N.1.1 │ 10.N.2.1   10.N.2.2       (N random per topology)
 *   fd00:N:1::2  fd00:N:1::1 │ fd00:N:2::1  fd00:N:2::2
 *
 * The client and the server route through the gateway, which forwards (IPv4 and IPv6). The
 * gateway is where the proxy runs; `redirect()` adds the iptables/ip6tables nat PREROUTING
 * REDIRECT rule that sends the client's connections to it. Namespace names are `mm-<random>-…`.
 * Nothing is skipped: without root, `ip`, `iptables` or the right to create namespaces,
 * createTopology throws a clear error and the test fails.
 *
 * Processes run in a namespace with `ip netns exec` and `setpriv --pdeathsig`, which both exec
 * the next program, so a spawned child's pid is the command's; children never inherit the test's
 * stdio and are killed if the test process dies. Each topology's namespaces are recorded with the
 * test's pid under $TMPDIR/mailmoat-netns/; a later createTopology deletes those of dead pids.
 */
import { execFile, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

export interface NetNs {
  /** The namespace's name (`ip netns exec NAME ...`). */
  name: string;
}
export interface HostNs extends NetNs {
  /** Its IPv4 and IPv6 addresses on the veth link to the gateway. */
  address: string;
  address6: string;
  /** The veth interface in this namespace (towards the gateway). */
  interface: string;
}
export interface GatewayNs extends NetNs {
  /** Its addresses and veth interface towards the client, and towards the server. */
  clientSide: { address: string; address6: string; interface: string };
  serverSide: { address: string; address6: string; interface: string };
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}
export interface ExecOptions {
  /** Milliseconds before the command is killed and the call fails (default 20 s). */
  timeoutMs?: number;
  /** Written to the command's standard input, which is then closed. */
  input?: string;
}

export interface Topology {
  prefix: string;
  client: HostNs;
  gateway: GatewayNs;
  server: HostNs;
  /** Runs `cmd args` in `ns` and resolves with its output; rejects (with the output) on a non-zero exit. */
  exec(ns: NetNs | string, cmd: string, args?: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Starts `cmd args` in `ns`; killed by teardown if still running. stdin is ignored and
   * stdout/stderr are piped unless `options.stdio` says otherwise: read them (LineReader) or
   * pass 'ignore', or a chatty child blocks once a pipe buffer is full.
   */
  spawnIn(ns: NetNs | string, cmd: string, args?: readonly string[], options?: SpawnOptions): ChildProcess;
  /**
   * In the gateway: `iptables -t nat -A PREROUTING -i <client veth> -p tcp --dport <dport>
   * -j REDIRECT --to-ports <toPort>` (ip6tables for family 6).
   */
  redirect(dport: number, toPort: number, options?: { family?: 4 | 6; destination?: string }): Promise<void>;
  /** Kills the spawned children and deletes the namespaces (with their veths and nat rules). Idempotent. */
  teardown(): Promise<void>;
}

const nsName = (ns: NetNs | string): string => (typeof ns === 'string' ? ns : ns.name);

function run(cmd: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, [...args], { timeout: options.timeoutMs ?? 20_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) {
        const what = `${cmd} ${args.join(' ')}`;
        reject(new Error(`\`${what}\` failed (${error.killed ? 'timed out' : `exit ${String(error.code)}`}): ${stderr.trim() || stdout.trim() || error.message}`, { cause: error }));
      } else {
        resolve({ stdout, stderr });
      }
    });
    child.stdin?.on('error', () => undefined); // EPIPE when the command exits without reading
    child.stdin?.end(options.input ?? '');
  });
}

async function requireTool(tool: string, apt: string): Promise<void> {
  try {
    await run('sh', ['-c', `command -v ${tool}`]);
  } catch {
    throw new Error(`network-namespace test: \`${tool}\` is not installed (Debian package ${apt}; scripts/setup.sh installs it)`);
  }
}

/** Exits 0 once argv[1] answers a TCP connection to port 9 (accepted or refused), 1 after 10 s. */
const PROBE_SCRIPT = `
const net = require('node:net');
const host = process.argv[1];
const deadline = Date.now() + 10000;
const attempt = () => {
  if (Date.now() > deadline) { console.error('no answer from ' + host); process.exit(1); }
  const socket = net.connect({ host, port: 9 });
  let settled = false;
  const retry = () => { if (settled) return; settled = true; clearTimeout(timer); socket.destroy(); setTimeout(attempt, 50); };
  const timer = setTimeout(retry, 300);
  socket.on('connect', () => process.exit(0));
  socket.on('error', (e) => (e.code === 'ECONNREFUSED' ? process.exit(0) : retry()));
};
attempt();
`;

const REGISTRY = join(tmpdir(), 'mailmoat-netns');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes the namespaces of topologies whose test process died without its teardown. */
async function sweepStale(): Promise<void> {
  let entries: string[];
  try {
    entries = readdirSync(REGISTRY);
  } catch {
    return;
  }
  for (const entry of entries) {
    const file = join(REGISTRY, entry);
    let record: { pid: number; namespaces: string[] };
    try {
      record = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; namespaces: string[] };
    } catch {
      continue;
    }
    if (alive(record.pid)) continue;
    for (const name of record.namespaces) await run('ip', ['netns', 'del', name]).catch(() => undefined);
    rmSync(file, { force: true });
  }
}

/** Builds the topology; registers teardown with `t` (and with process exit, for a crashed run). */
export async function createTopology(t: Test): Promise<Topology> {
  if (process.platform !== 'linux') throw new Error('network-namespace test: needs Linux');
  if (process.getuid?.() !== 0) {
    throw new Error('network-namespace test: must run as root (it creates network namespaces, veth pairs and iptables rules)');
  }
  await requireTool('ip', 'iproute2');
  await requireTool('iptables', 'iptables');
  await requireTool('ip6tables', 'iptables');

  const prefix = `mm-${randomBytes(3).toString('hex')}`;
  const n = randomInt(16, 250);
  const h6 = n.toString(16);
  const client: HostNs = { name: `${prefix}-client`, address: `10.${n}.1.2`, address6: `fd00:${h6}:1::2`, interface: 'veth-gw' };
  const server: HostNs = { name: `${prefix}-server`, address: `10.${n}.2.2`, address6: `fd00:${h6}:2::2`, interface: 'veth-gw' };
  const gateway: GatewayNs = {
    name: `${prefix}-gw`,
    clientSide: { address: `10.${n}.1.1`, address6: `fd00:${h6}:1::1`, interface: 'veth-client' },
    serverSide: { address: `10.${n}.2.1`, address6: `fd00:${h6}:2::1`, interface: 'veth-server' },
  };

  await sweepStale();
  const created: string[] = [];
  const registryFile = join(REGISTRY, `${prefix}.json`);
  mkdirSync(REGISTRY, { recursive: true });
  writeFileSync(registryFile, JSON.stringify({ pid: process.pid, namespaces: [client.name, gateway.name, server.name] }));
  const children = new Set<ChildProcess>();
  let tornDown = false;

  const onExit = (): void => {
    // Last resort when the test process dies without its teardown: synchronous, best effort.
    for (const child of children) child.kill('SIGKILL');
    for (const name of created) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    rmSync(registryFile, { force: true });
  };
  process.once('exit', onExit);

  const teardown = async (): Promise<void> => {
    if (tornDown) return;
    tornDown = true;
    process.removeListener('exit', onExit);
    await Promise.all(
      [...children].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    const errors: string[] = [];
    for (const name of created.reverse()) {
      try {
        await run('ip', ['netns', 'del', name]);
      } catch (error) {
        errors.push((error as Error).message);
      }
    }
    rmSync(registryFile, { force: true });
    if (errors.length > 0) throw new Error(`network-namespace teardown: ${errors.join('; ')}`);
  };
  t.teardown(teardown);

  const exec = (ns: NetNs | string, cmd: string, args: readonly string[] = [], options?: ExecOptions): Promise<ExecResult> =>
    run('ip', ['netns', 'exec', nsName(ns), cmd, ...args], options);

  const spawnIn = (ns: NetNs | string, cmd: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess => {
    if (tornDown) throw new Error('network-namespace test: spawnIn after teardown');
    // setpriv --pdeathsig: the command dies with the test process even when that is killed
    // outright (a runner's timeout), so no process keeps a namespace alive.
    const child = spawn('ip', ['netns', 'exec', nsName(ns), 'setpriv', '--pdeathsig', 'SIGKILL', '--', cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...options,
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };

  try {
    for (const ns of [client.name, gateway.name, server.name]) {
      try {
        await run('ip', ['netns', 'add', ns]);
      } catch (error) {
        throw new Error(
          `network-namespace test: cannot create network namespace ${ns} (\`ip netns add\` failed: ${(error as Error).message}). ` +
            'This test needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN in a kernel with network namespaces; it does not skip.',
          { cause: error },
        );
      }
      created.push(ns);
      // IPv6 usable at once: no duplicate address detection (link-local addresses too).
      await exec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
    }
    const ip = (ns: string, ...args: string[]): Promise<ExecResult> => run('ip', ['-n', ns, ...args]);
    // Forwarding on before the veths exist, so they start out as router interfaces.
    await exec(gateway, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    // veth pairs created straight inside the namespaces: no names in the root namespace to clash with.
    await ip(gateway.name, 'link', 'add', gateway.clientSide.interface, 'type', 'veth', 'peer', 'name', client.interface, 'netns', client.name);
    await ip(gateway.name, 'link', 'add', gateway.serverSide.interface, 'type', 'veth', 'peer', 'name', server.interface, 'netns', server.name);

    const links: Array<[string, string, string, string]> = [
      [client.name, client.interface, client.address, client.address6],
      [gateway.name, gateway.clientSide.interface, gateway.clientSide.address, gateway.clientSide.address6],
      [gateway.name, gateway.serverSide.interface, gateway.serverSide.address, gateway.serverSide.address6],
      [server.name, server.interface, server.address, server.address6],
    ];
    for (const [ns, dev, address, address6] of links) {
      // A neighbour solicitation lost while a fresh veth settles is resent after 100 ms, not 1 s.
      await exec(ns, 'sysctl', ['-q', '-w', `net.ipv6.neigh.${dev}.retrans_time_ms=100`]);
      await ip(ns, 'addr', 'add', `${address}/24`, 'dev', dev);
      await ip(ns, '-6', 'addr', 'add', `${address6}/64`, 'dev', dev, 'nodad');
      await ip(ns, 'link', 'set', dev, 'up');
    }
    for (const ns of [client.name, gateway.name, server.name]) await ip(ns, 'link', 'set', 'lo', 'up');

    await ip(client.name, 'route', 'add', 'default', 'via', gateway.clientSide.address);
    await ip(client.name, '-6', 'route', 'add', 'default', 'via', gateway.clientSide.address6);
    await ip(server.name, 'route', 'add', 'default', 'via', gateway.serverSide.address);
    await ip(server.name, '-6', 'route', 'add', 'default', 'via', gateway.serverSide.address6);
    // Fresh veths can drop the first ARP/neighbour solicitations for a moment: wait until each
    // host gets an answer (a refused connection is one) from its side of the gateway.
    await Promise.all([
      ...[gateway.clientSide.address, gateway.clientSide.address6].map((address) => exec(client, process.execPath, ['-e', PROBE_SCRIPT, address])),
      ...[gateway.serverSide.address, gateway.serverSide.address6].map((address) => exec(server, process.execPath, ['-e', PROBE_SCRIPT, address])),
    ]);
  } catch (error) {
    await teardown().catch(() => undefined);
    throw error;
  }

  const redirect = async (dport: number, toPort: number, options: { family?: 4 | 6; destination?: string } = {}): Promise<void> => {
    const tool = options.family === 6 ? 'ip6tables' : 'iptables';
    const match = options.destination === undefined ? [] : ['-d', options.destination];
    const args = ['-w', '-t', 'nat', '-A', 'PREROUTING', '-i', gateway.clientSide.interface, ...match, '-p', 'tcp', '--dport', String(dport), '-j', 'REDIRECT', '--to-ports', String(toPort)];
    try {
      await exec(gateway, tool, args);
    } catch (error) {
      throw new Error(`network-namespace test: cannot add the nat REDIRECT rule in ${gateway.name} (${(error as Error).message})`, { cause: error });
    }
  };

  return { prefix, client, gateway, server, exec, spawnIn, redirect, teardown };
}

/**
 * The stdout of a child as lines, kept in order so that successive `next()` calls miss none;
 * stderr is kept for error messages.
 */
export class LineReader {
  private buffer = '';
  private readonly lines: string[] = [];
  private stderrText = '';
  private exited: string | undefined;
  private wake: (() => void) | undefined;

  constructor(child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) !== -1) {
        this.lines.push(this.buffer.slice(0, newline));
        this.buffer = this.buffer.slice(newline + 1);
      }
      this.wake?.();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrText += chunk.toString('utf8');
    });
    child.once('exit', (code, signal) => {
      this.exited = signal ?? String(code);
      this.wake?.();
    });
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** The next line (after those already returned) for which `predicate` holds; earlier non-matching lines are dropped. */
  async next(predicate: (line: string) => boolean = () => true, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.lines.length > 0) {
        const line = this.lines.shift() as string;
        if (predicate(line)) return line;
      }
      if (this.exited !== undefined) throw new Error(`process exited (${this.exited}) before the expected line; stderr: ${this.stderrText.trim()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for a line; stderr so far: ${this.stderrText.trim()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = undefined;
          resolve();
        };
      });
    }
  }
}
