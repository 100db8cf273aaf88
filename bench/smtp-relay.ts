/**
 * SMTP relay benchmark: Postfix smtp-source into smtp-sink, directly and through
 * mailmoat, in one run on this machine.
 *   A. 100 KB multipart messages with a PDF attachment, 10 parallel sessions:
 *      messages/s direct and through the proxy, and their ratio.
 *   B. 10 KB messages, 1 session: ms per message direct and through the proxy,
 *      and the difference (latency the proxy adds).
 * A is run once more with smtp-source -d (each session keeps its connection for all its
 * messages) for each proxy's CPU per message: what a transaction costs without a connection.
 * Two more columns: mailmoat with inspection off (`inspect.smtp: none`: the relay
 * alone), and a do-nothing Node pipe proxy (bench/pipe-proxy.ts), the floor any
 * Node proxy pays here.
 * The proxy runs as its own process (`mailmoat start`) with the default policy
 * (loopback is not internal, so every message is inspected: this issue's
 * inspector passes everything). Peak resident memory of the proxy is read from
 * /proc. Rounds alternate direct/proxy; the median round is reported.
 * Each proxy's CPU time (user + system, summed over its process tree: the supervisor
 * and its workers) is read from /proc around each run and printed as CPU ms per
 * message, with each target's ratio to the pipe proxy measured in the same run (on a
 * loaded machine wall-clock figures move; CPU per message and same-run ratios less so).
 *
 * Usage: npm run bench [-- --rounds 3 --messages-a 2000 --messages-b 1000 --workers N --warmup 2000]
 * (--workers: the mailmoat processes' `workers`; by default the policy's, one per core.)
 */
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { freePort, listening } from './ports.js';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const run = promisify(execFile);
const CLI = new URL('../src/cli.js', import.meta.url).pathname;
const PIPE = new URL('./pipe-proxy.js', import.meta.url).pathname;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'messages-a': { type: 'string', default: '2000' },
    'messages-b': { type: 'string', default: '1000' },
    /** The mailmoat processes' `workers` (default: the policy's default, one per core). */
    workers: { type: 'string', default: '' },
    /** Messages of A sent through each proxy before measuring (and a quarter as many of B). */
    warmup: { type: 'string', default: '2000' },
  },
});
const ROUNDS = Number(values.rounds);
const MESSAGES_A = Number(values['messages-a']);
const MESSAGES_B = Number(values['messages-b']);
const WARMUP = Number(values.warmup);

/** Up to 60 s: a loaded machine can take long to start the supervisor and its workers. */
async function waitForPort(port: number): Promise<void> {
  for (let attempt = 0; attempt < 1200; attempt++) {
    if (await listening(port)) return;
    await sleep(50);
  }
  throw new Error(`port ${port} never opened`);
}

function multipartMessage(totalBytes: number): string {
  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(Math.floor(totalBytes * 0.72))]);
  const base64 = pdf.toString('base64').replace(/.{76}/g, '$&\n');
  return [
    'From: bench@example.org',
    'To: sink@example.net',
    'Subject: bench message with a PDF attachment',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="bench-boundary"',
    '',
    '--bench-boundary',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'The quarterly figures are attached.',
    '--bench-boundary',
    'Content-Type: application/pdf; name="figures.pdf"',
    'Content-Disposition: attachment; filename="figures.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    base64,
    '--bench-boundary--',
    '',
  ].join('\n');
}

function plainMessage(totalBytes: number): string {
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n';
  return `From: bench@example.org\nTo: sink@example.net\nSubject: bench 10 KB\n\n${line.repeat(Math.ceil(totalBytes / line.length))}`;
}

/** `keep`: smtp-source -d, every session sends its messages over one connection (no connection per message). */
async function smtpSource(port: number, sessions: number, messages: number, file: string, keep = false): Promise<number> {
  const started = process.hrtime.bigint();
  await run('smtp-source', [...(keep ? ['-d'] : []), '-s', String(sessions), '-m', String(messages), '-f', 'bench@example.org', '-t', 'sink@example.net', '-F', file, `127.0.0.1:${port}`], { maxBuffer: 1 << 20 });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

const median = (numbers: number[]): number => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)] ?? NaN;

async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ). */
const MS_PER_CLOCK_TICK = 10;

/** CPU time (user + system) of `root` and all its descendants, in ms, from /proc. */
async function treeCpuMs(root: number): Promise<number> {
  const stats = new Map<number, { parent: number; ticks: number }>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (which may hold spaces) start at state; ppid is the 2nd, utime the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields.length < 13) continue;
    stats.set(Number(entry), { parent: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
  }
  const inTree = (pid: number): boolean => {
    for (let current = pid, hops = 0; current > 1 && hops < 64; hops++) {
      if (current === root) return true;
      current = stats.get(current)?.parent ?? 0;
    }
    return false;
  };
  let ticks = 0;
  for (const [pid, stat] of stats) if (inTree(pid)) ticks += stat.ticks;
  return ticks * MS_PER_CLOCK_TICK;
}

/** One smtp-source run through a proxy process: wall seconds and the proxy's CPU ms per message. */
async function measure(pid: number | undefined, port: number, sessions: number, messages: number, file: string, keep = false): Promise<{ seconds: number; cpuMsPerMessage: number }> {
  const before = pid === undefined ? 0 : await treeCpuMs(pid);
  const seconds = await smtpSource(port, sessions, messages, file, keep);
  const after = pid === undefined ? 0 : await treeCpuMs(pid);
  return { seconds, cpuMsPerMessage: (after - before) / messages };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-bench-'));
  const fileA = join(dir, 'a-100k.eml');
  const fileB = join(dir, 'b-10k.eml');
  await writeFile(fileA, multipartMessage(100 * 1024));
  await writeFile(fileB, plainMessage(10 * 1024));

  const sinkPort = await freePort();
  const asRoot = process.getuid?.() === 0;
  const sink = spawn('smtp-sink', [...(asRoot ? ['-u', 'nobody'] : []), `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' });
  const proxyPort = await freePort();
  const policy = join(dir, 'policy.yaml');
  // Every session comes from 127.0.0.1: the per-address admission limits are not what is measured.
  const workers = values.workers === '' ? '' : `workers: ${Number(values.workers)}\n`;
  const benchOnly = `admin:\n  listen: ""\nlimits:\n  max_sessions_per_address: 10000\n  max_connections_per_address_per_minute: 1000000\n${workers}`;
  await writeFile(policy, `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:${proxyPort}\n    upstream: 127.0.0.1:${sinkPort}\n${benchOnly}`);
  const proxy = spawn(process.execPath, [CLI, 'start', '--policy', policy], { stdio: 'ignore' });
  const relayPort = await freePort();
  const relayPolicy = join(dir, 'relay-only.yaml');
  await writeFile(relayPolicy, `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:${relayPort}\n    upstream: 127.0.0.1:${sinkPort}\ninspect:\n  smtp: none\n${benchOnly}`);
  const relay = spawn(process.execPath, [CLI, 'start', '--policy', relayPolicy], { stdio: 'ignore' });
  const pipePort = await freePort();
  const pipe = spawn(process.execPath, [PIPE, String(pipePort), String(sinkPort)], { stdio: 'ignore' });
  try {
    await waitForPort(sinkPort);
    await waitForPort(proxyPort);
    await waitForPort(pipePort);
    await waitForPort(relayPort);
    // Warm-up: every worker's JIT reaches its steady state on both messages before anything is measured
    // (with 50 messages, the first 1,000 or so of a measured round still paid for compilation).
    for (const port of [proxyPort, relayPort, pipePort]) {
      await smtpSource(port, 10, WARMUP, fileA);
      await smtpSource(port, 1, Math.ceil(WARMUP / 4), fileB);
    }

    const a = { direct: [] as number[], proxy: [] as number[], relay: [] as number[], pipe: [] as number[] };
    const b = { direct: [] as number[], proxy: [] as number[], relay: [] as number[], pipe: [] as number[] };
    const cpu = { aProxy: [] as number[], aRelay: [] as number[], aPipe: [] as number[], bProxy: [] as number[], bRelay: [] as number[], bPipe: [] as number[] };
    // A again with smtp-source -d (each session's messages over one connection): the CPU of a transaction without a connection's.
    const kept = { proxy: [] as number[], relay: [] as number[], pipe: [] as number[] };
    const targets = [
      { port: proxyPort, pid: proxy.pid, a: a.proxy, b: b.proxy, cpuA: cpu.aProxy, cpuB: cpu.bProxy, cpuKept: kept.proxy },
      { port: relayPort, pid: relay.pid, a: a.relay, b: b.relay, cpuA: cpu.aRelay, cpuB: cpu.bRelay, cpuKept: kept.relay },
      { port: pipePort, pid: pipe.pid, a: a.pipe, b: b.pipe, cpuA: cpu.aPipe, cpuB: cpu.bPipe, cpuKept: kept.pipe },
    ];
    for (let round = 0; round < ROUNDS; round++) {
      a.direct.push(MESSAGES_A / (await smtpSource(sinkPort, 10, MESSAGES_A, fileA)));
      for (const target of targets) {
        const run = await measure(target.pid, target.port, 10, MESSAGES_A, fileA);
        target.a.push(MESSAGES_A / run.seconds);
        target.cpuA.push(run.cpuMsPerMessage);
      }
      for (const target of targets) target.cpuKept.push((await measure(target.pid, target.port, 10, MESSAGES_A, fileA, true)).cpuMsPerMessage);
      b.direct.push(((await smtpSource(sinkPort, 1, MESSAGES_B, fileB)) * 1000) / MESSAGES_B);
      for (const target of targets) {
        const run = await measure(target.pid, target.port, 1, MESSAGES_B, fileB);
        target.b.push((run.seconds * 1000) / MESSAGES_B);
        target.cpuB.push(run.cpuMsPerMessage);
      }
    }
    const rss = await peakRssMb(proxy.pid ?? 0);
    const result = {
      machine: `${cpus().length} cores, ${cpus()[0]?.model ?? '?'}, node ${process.version}`,
      rounds: ROUNDS,
      a: { messages: MESSAGES_A, sessions: 10, directPerSecond: median(a.direct), proxyPerSecond: median(a.proxy), relayPerSecond: median(a.relay), pipePerSecond: median(a.pipe) },
      b: { messages: MESSAGES_B, sessions: 1, directMs: median(b.direct), proxyMs: median(b.proxy), relayMs: median(b.relay), pipeMs: median(b.pipe) },
      proxyPeakRssMb: rss,
      cpuMsPerMessage: { aProxy: median(cpu.aProxy), aRelay: median(cpu.aRelay), aPipe: median(cpu.aPipe), bProxy: median(cpu.bProxy), bRelay: median(cpu.bRelay), bPipe: median(cpu.bPipe) },
      cpuMsPerMessageKeptConnections: { aProxy: median(kept.proxy), aRelay: median(kept.relay), aPipe: median(kept.pipe) },
    };
    const toPipe = {
      aProxy: result.a.proxyPerSecond / result.a.pipePerSecond,
      aRelay: result.a.relayPerSecond / result.a.pipePerSecond,
      bProxyMs: result.b.proxyMs - result.b.pipeMs,
      bRelayMs: result.b.relayMs - result.b.pipeMs,
    };
    const ratio = result.a.proxyPerSecond / result.a.directPerSecond;
    const added = result.b.proxyMs - result.b.directMs;
    const perSecond = (value: number): string => `${value.toFixed(0)} msg/s (ratio ${(value / result.a.directPerSecond).toFixed(2)})`;
    const perMessage = (value: number): string => `${value.toFixed(2)} ms/msg (+${(value - result.b.directMs).toFixed(2)} ms)`;
    const rows = [
      ['benchmark', 'direct', 'through mailmoat (inspecting)', 'mailmoat vs direct', 'target', 'mailmoat, inspection off', 'Node pipe proxy (reference)'],
      [`A: 100 KB multipart+PDF, 10 sessions, ${MESSAGES_A} msgs`, `${result.a.directPerSecond.toFixed(0)} msg/s`, `${result.a.proxyPerSecond.toFixed(0)} msg/s`, `ratio ${ratio.toFixed(2)}`, '>= 0.50', perSecond(result.a.relayPerSecond), perSecond(result.a.pipePerSecond)],
      [`B: 10 KB, 1 session, ${MESSAGES_B} msgs`, `${result.b.directMs.toFixed(2)} ms/msg`, `${result.b.proxyMs.toFixed(2)} ms/msg`, `+${added.toFixed(2)} ms`, '<= 2 ms added', perMessage(result.b.relayMs), perMessage(result.b.pipeMs)],
      ['mailmoat (inspecting) peak resident memory', '', `${rss.toFixed(0)} MB`, '', '', '', ''],
      ['A vs the pipe proxy (same run)', '', `ratio ${toPipe.aProxy.toFixed(2)}`, '', '>= 0.75 / >= 0.85', `ratio ${toPipe.aRelay.toFixed(2)}`, 'ratio 1.00'],
      ['B vs the pipe proxy (same run)', '', `+${toPipe.bProxyMs.toFixed(2)} ms`, '', '<= +0.5 ms', `+${toPipe.bRelayMs.toFixed(2)} ms`, '+0.00 ms'],
      ['A: proxy CPU ms per message', '', result.cpuMsPerMessage.aProxy.toFixed(2), '', '', result.cpuMsPerMessage.aRelay.toFixed(2), result.cpuMsPerMessage.aPipe.toFixed(2)],
      ['B: proxy CPU ms per message', '', result.cpuMsPerMessage.bProxy.toFixed(2), '', '', result.cpuMsPerMessage.bRelay.toFixed(2), result.cpuMsPerMessage.bPipe.toFixed(2)],
      ['A, kept connections (-d): CPU ms per message', '', result.cpuMsPerMessageKeptConnections.aProxy.toFixed(2), '', '', result.cpuMsPerMessageKeptConnections.aRelay.toFixed(2), result.cpuMsPerMessageKeptConnections.aPipe.toFixed(2)],
    ];
    const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
    console.log(`mailmoat SMTP relay bench (${result.machine}; median of ${ROUNDS} rounds; mailmoat workers: ${values.workers === '' ? 'one per core' : Number(values.workers)})`);
    for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '));
    await mkdir(new URL('../../bench/out/', import.meta.url), { recursive: true });
    await writeFile(new URL('../../bench/out/smtp-relay.json', import.meta.url), JSON.stringify({ ...result, ratio, addedMs: added, toPipe }, null, 2));
  } finally {
    proxy.kill('SIGTERM');
    relay.kill('SIGTERM');
    pipe.kill();
    sink.kill();
  }
}

await main();
