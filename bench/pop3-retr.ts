/**
 * POP3 RETR benchmark: a real Dovecot (bench/dovecot.ts) read directly and through
 * mailmoat, in one run on this machine. One mailbox holds N distinct 100 KB
 * messages (a text part and a base64 attachment of fresh random bytes named like
 * a PDF); K concurrent sessions each log in, then RETR messages off a shared
 * queue until all N were read once. Only the RETR phase is timed (from when every
 * session has logged in to the last final dot). Three targets, for every K:
 *   direct: Dovecot itself;
 *   mailmoat inspecting: the default policy (every RETR is captured, walked by
 *     the inspector and re-stuffed; no clamd);
 *   mailmoat relay only: `inspect.pop3: false` (read, unstuff, re-stuff, send);
 *   a do-nothing Node pipe proxy (bench/pipe-proxy.ts), what any Node proxy costs here.
 * Per target: messages/s and MB/s (wire bytes received by the clients), the ratio
 * to direct (target: mailmoat inspecting >= 0.5 at every K), the mean time per
 * RETR (command sent to final dot received) and what mailmoat adds to it, and
 * mailmoat's CPU time per RETR.
 *
 * Both mailmoat listeners and the pipe proxy run in this process, which does nothing else while a
 * round runs; its peak resident memory (VmHWM) is reported. Dovecot, the seeded
 * messages and the POP3 clients live in a child process (this file with
 * --client), so they count neither in that memory nor on the proxy's event loop.
 * Each measurement is checked, not assumed: every response must be +OK and end in
 * CRLF.CRLF, the byte total must equal direct's, one message per measurement must
 * arrive byte for byte as Dovecot sent it (and Dovecot's copy must be the seeded
 * message), and mailmoat must report a pass verdict, inspected or not as
 * configured, for every RETR. Warm-up passes per target precede the rounds (5 by default:
 * with one pass of 200 messages, the rounds still timed the inspector's JIT compilation);
 * rounds run direct, inspecting, relay, pipe in turn and each figure is the median
 * over the rounds (at 10 sessions the time per RETR includes queueing).
 *
 * Usage: node dist/bench/pop3-retr.js [--rounds 3 --messages 200 --sessions 1,10 --warmup-passes 5]
 * Needs: dovecot-pop3d (bash scripts/setup.sh bench installs it).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { figuresMessage } from './messages.js';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startDovecot, type RunningDovecot } from './dovecot.js';
import { pipeProxy } from './pipe-proxy.js';
import { validatePolicy } from '../src/config/load.js';
import { createMailInspector } from '../src/inspect/create.js';
import { createLogger, type RetrievalSummary } from '../src/observe/log.js';
import { startProxy, type RunningProxy } from '../src/main.js';
import { DotStuffer, END_OF_DATA } from '../src/wire/dot-codec.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    messages: { type: 'string', default: '200' },
    sessions: { type: 'string', default: '1,10' },
    /** Passes over all the messages through each target before the rounds (the proxy's JIT warms up). */
    'warmup-passes': { type: 'string', default: '5' },
    /** Internal: this process is the child that runs Dovecot and the POP3 clients. */
    client: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(values.rounds);
const WARMUP_PASSES = Math.max(1, Number(values['warmup-passes']));
const MESSAGES = Number(values.messages);
const SESSIONS = values.sessions.split(',').map(Number);
const MESSAGE_BYTES = 100 * 1024;
const USER = { name: 'bench', password: 'bench-secret' };
/** A response that stalls this long fails the bench rather than hanging it. */
const CLIENT_TIMEOUT_MS = 30_000;
const TERMINATOR = Buffer.from('\r\n.\r\n', 'latin1');

// ---- messages parent and child exchange --------------------------------------------

interface Job {
  port: number;
  sessions: number;
  /** The message whose response comes back whole-checked (its hash and length). */
  check: number;
}

interface JobResult {
  /** The RETR phase only. */
  seconds: number;
  /** Wire bytes of all RETR responses (status lines, stuffed bodies, final dots). */
  bytes: number;
  /** Mean time from RETR sent to final dot received. */
  retrMs: number;
  check: { number: number; sha256: string; length: number; bodyIsSeeded: boolean };
}

type ToChild = { kind: 'run'; job: Job } | { kind: 'stop' };
type FromChild = { kind: 'ready'; port: number; meanBytes: number } | { kind: 'result'; result: JobResult } | { kind: 'error'; message: string };

// ---- the child: Dovecot, seeded messages, POP3 clients -------------------------------


/** The body of a RETR response as the server must send it: dot-stuffed, then ".\r\n". */
function stuffedWire(content: Buffer): Buffer {
  const stuffer = new DotStuffer();
  return Buffer.concat([...stuffer.stuff(content), ...stuffer.end(), END_OF_DATA]);
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

interface Pop3Response {
  status: string;
  bytes: number;
  /** The whole response, when it was asked to be kept. */
  wire: Buffer | undefined;
}

interface Pending {
  multiline: boolean;
  keep: boolean;
  /** Bytes until the status line is known; every byte when kept. */
  chunks: Buffer[];
  status: string | undefined;
  bytes: number;
  /** The last five bytes received: the response is complete when they are CRLF.CRLF. */
  tail: Buffer;
  resolve: (response: Pop3Response) => void;
  reject: (error: Error) => void;
}

/**
 * A minimal POP3 client: one command at a time, so a multi-line response is
 * complete exactly when the bytes received so far end in CRLF.CRLF (stuffing
 * keeps that sequence out of any body). Looking at the last five bytes per chunk
 * costs nothing; bodies are counted, not copied, unless asked for.
 */
class Pop3Connection {
  private pending: Pending | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.setTimeout(CLIENT_TIMEOUT_MS, () => this.fail(new Error(`no data for ${CLIENT_TIMEOUT_MS / 1000} s`)));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('the server closed the connection')));
  }

  static async open(port: number): Promise<Pop3Connection> {
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return new Pop3Connection(socket);
  }

  /** Sends the command (none: the greeting) and resolves with its whole response; rejects on -ERR. */
  request(command: string | undefined, multiline: boolean, keep = false): Promise<Pop3Response> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.pending !== undefined) return Promise.reject(new Error('one command at a time'));
    const response = new Promise<Pop3Response>((resolve, reject) => {
      this.pending = { multiline, keep, chunks: [], status: undefined, bytes: 0, tail: Buffer.alloc(0), resolve, reject };
    });
    if (command !== undefined) this.socket.write(`${command}\r\n`);
    return response.then((answer) => {
      if (!answer.status.startsWith('+OK')) throw new Error(`${command ?? 'greeting'}: ${answer.status}`);
      return answer;
    });
  }

  async quit(): Promise<void> {
    await this.request('QUIT', false);
    this.pending = undefined;
    this.failure = new Error('closed');
    this.socket.end();
  }

  private receive(chunk: Buffer): void {
    const pending = this.pending;
    if (pending === undefined) return this.fail(new Error(`unexpected bytes from the server: ${JSON.stringify(chunk.toString('latin1', 0, 80))}`));
    pending.bytes += chunk.length;
    if (pending.keep || pending.status === undefined) pending.chunks.push(chunk);
    pending.tail = chunk.length >= 5 ? chunk.subarray(chunk.length - 5) : Buffer.concat([pending.tail, chunk]).subarray(-5);
    if (pending.status === undefined) {
      const head = pending.chunks.length === 1 ? chunk : Buffer.concat(pending.chunks);
      const end = head.indexOf('\r\n');
      if (end === -1) {
        if (head.length > 1024) this.fail(new Error('a status line over 1 KB'));
        return;
      }
      pending.status = head.toString('latin1', 0, end);
      if (!pending.keep) pending.chunks = [];
      if (!pending.multiline || !pending.status.startsWith('+OK')) {
        if (pending.bytes !== end + 2) return this.fail(new Error(`bytes after the single-line response ${pending.status}`));
        return this.settle(pending);
      }
    }
    if (pending.tail.equals(TERMINATOR)) this.settle(pending);
  }

  private settle(pending: Pending): void {
    this.pending = undefined;
    pending.resolve({ status: pending.status ?? '', bytes: pending.bytes, wire: pending.keep ? Buffer.concat(pending.chunks) : undefined });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
    this.socket.destroy();
  }
}

/** All MESSAGES once, over `sessions` sessions that log in first and then take the next message number in turn. */
async function load(job: Job, expected: readonly string[]): Promise<JobResult> {
  const connections = await Promise.all(
    Array.from({ length: job.sessions }, async () => {
      const connection = await Pop3Connection.open(job.port);
      await connection.request(undefined, false);
      await connection.request(`USER ${USER.name}`, false);
      await connection.request(`PASS ${USER.password}`, false);
      return connection;
    }),
  );
  let next = 1;
  let bytes = 0;
  let retrMs = 0;
  let kept: Buffer | undefined;
  const started = performance.now();
  await Promise.all(
    connections.map(async (connection) => {
      for (let number = next++; number <= MESSAGES; number = next++) {
        const sent = performance.now();
        const response = await connection.request(`RETR ${number}`, true, number === job.check);
        retrMs += performance.now() - sent;
        bytes += response.bytes;
        if (response.wire !== undefined) kept = response.wire;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(connections.map((connection) => connection.quit()));
  if (kept === undefined) throw new Error(`RETR ${job.check} was not kept`);
  const body = kept.subarray(kept.indexOf('\r\n') + 2);
  return {
    seconds,
    bytes,
    retrMs: retrMs / MESSAGES,
    check: { number: job.check, sha256: sha256(kept), length: kept.length, bodyIsSeeded: sha256(body) === expected[job.check - 1] },
  };
}

async function client(): Promise<void> {
  const send = (message: FromChild): void => void process.send?.(message);
  let dovecot: RunningDovecot | undefined;
  const stop = async (): Promise<void> => {
    await dovecot?.stop();
    process.exit(0);
  };
  process.on('disconnect', () => void stop());
  try {
    let messages: Buffer[] = Array.from({ length: MESSAGES }, (_, index) => figuresMessage(index, MESSAGE_BYTES, { from: 'Bench Sender <bench@example.org>', to: 'Bench Reader <bench@example.net>', idPrefix: 'pop3-bench' }));
    const expected = messages.map((message) => sha256(stuffedWire(message)));
    const meanBytes = messages.reduce((sum, message) => sum + message.length, 0) / MESSAGES;
    dovecot = await startDovecot([{ name: USER.name, password: USER.password, messages }]);
    messages = [];
    process.on('message', (message: ToChild) => {
      if (message.kind === 'stop') return void stop();
      load(message.job, expected).then(
        (result) => send({ kind: 'result', result }),
        (error: unknown) => send({ kind: 'error', message: error instanceof Error ? error.message : String(error) }),
      );
    });
    send({ kind: 'ready', port: dovecot.port, meanBytes });
  } catch (error) {
    send({ kind: 'error', message: error instanceof Error ? error.message : String(error) });
    await stop();
  }
}

// ---- the parent: mailmoat, rounds, checks, the table ----------------------------------

/** The child's next message (it answers one request at a time). */
function nextFromChild(child: ChildProcess): Promise<FromChild> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromChild): void => (child.off('exit', onExit), resolve(message));
    const onExit = (code: number | null): void => (child.off('message', onMessage), reject(new Error(`the client process exited (${code})`)));
    child.once('message', onMessage);
    child.once('exit', onExit);
  });
}

const median = (numbers: number[]): number => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)] ?? NaN;

async function peakRssMb(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

type Target = 'direct' | 'inspecting' | 'relay' | 'pipe';
const TARGETS: readonly Target[] = ['direct', 'inspecting', 'relay', 'pipe'];
/** The targets that are mailmoat, which reports a retrieval summary for every RETR. */
type MailmoatTarget = 'inspecting' | 'relay';
const isMailmoat = (target: Target): target is MailmoatTarget => target === 'inspecting' || target === 'relay';

interface Measurement {
  perSecond: number;
  megabytesPerSecond: number;
  retrMs: number;
  /** This process's CPU time per RETR (mailmoat's or the pipe's; zero work for direct). */
  cpuMs: number;
}

async function main(): Promise<void> {
  if (!Number.isInteger(MESSAGES) || MESSAGES < 1 || SESSIONS.some((sessions) => !Number.isInteger(sessions) || sessions < 1) || !(ROUNDS >= 1)) {
    throw new Error('--rounds, --messages and --sessions (a comma-separated list) take positive integers');
  }
  const child = fork(fileURLToPath(import.meta.url), ['--client', '--messages', String(MESSAGES)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit').catch(() => undefined);
  const proxies: RunningProxy[] = [];
  let pipe: Server | undefined;
  try {
    const ready = await nextFromChild(child);
    if (ready.kind !== 'ready') throw new Error(`the client process could not start Dovecot: ${ready.kind === 'error' ? ready.message : ready.kind}`);
    const upstream = `127.0.0.1:${ready.port}`;
    const listeners = [{ protocol: 'pop3', listen: '127.0.0.1:0', upstream }];
    // Every session comes from 127.0.0.1: the per-address abuse limits (20 at once, 120 a minute) would refuse
    // larger --sessions or many rounds within a minute.
    const limits = { max_sessions_per_address: 10_000, max_connections_per_address_per_minute: 1_000_000 };
    const inspectingPolicy = validatePolicy({ listeners, limits }, 'bench');
    const relayPolicy = validatePolicy({ listeners, limits, inspect: { pop3: false } }, 'bench');
    const inspector = await createMailInspector(inspectingPolicy);
    const logger = createLogger('silent');
    const retrievals: Record<MailmoatTarget, RetrievalSummary[]> = { inspecting: [], relay: [] };
    pipe = pipeProxy(ready.port).listen(0, '127.0.0.1');
    await once(pipe, 'listening');
    const ports: Record<Target, number> = { direct: ready.port, inspecting: 0, relay: 0, pipe: (pipe.address() as AddressInfo).port };
    for (const [target, policy] of [['inspecting', inspectingPolicy], ['relay', relayPolicy]] as const) {
      const proxy = await startProxy(policy, inspector, logger);
      proxies.push(proxy);
      proxy.listeners[0]?.on('retrieval', (summary) => retrievals[target].push(summary));
      ports[target] = proxy.addresses[0]?.port ?? 0;
    }

    const measure = async (target: Target, sessions: number, check: number): Promise<{ measurement: Measurement; result: JobResult }> => {
      if (isMailmoat(target)) retrievals[target].length = 0;
      const cpu = process.cpuUsage();
      child.send({ kind: 'run', job: { port: ports[target], sessions, check } } satisfies ToChild);
      const answer = await nextFromChild(child);
      const used = process.cpuUsage(cpu);
      if (answer.kind !== 'result') throw new Error(`${target}, ${sessions} sessions: ${answer.kind === 'error' ? answer.message : answer.kind}`);
      const result = answer.result;
      if (isMailmoat(target)) {
        const seen = retrievals[target];
        const wrong = seen.filter((summary) => summary.verdict !== 'pass' || summary.inspected !== (target === 'inspecting'));
        if (seen.length !== MESSAGES || wrong.length > 0) {
          throw new Error(`${target}, ${sessions} sessions: mailmoat reported ${seen.length} retrievals for ${MESSAGES} RETRs, ${wrong.length} not a pass ${target === 'inspecting' ? 'with' : 'without'} inspection`);
        }
      }
      return {
        result,
        measurement: {
          perSecond: MESSAGES / result.seconds,
          megabytesPerSecond: result.bytes / result.seconds / 1e6,
          retrMs: result.retrMs,
          cpuMs: (used.user + used.system) / 1000 / MESSAGES,
        },
      };
    };

    /** One message per measurement byte for byte as direct, the byte total equal, Dovecot's copy the seeded one. */
    const checked = new Set<number>();
    const verify = (direct: JobResult, target: Target, sessions: number, got: JobResult): void => {
      const where = `${target}, ${sessions} sessions`;
      if (!direct.check.bodyIsSeeded) throw new Error(`${where}: Dovecot's RETR ${direct.check.number} is not the seeded message`);
      if (got.check.sha256 !== direct.check.sha256 || got.check.length !== direct.check.length) {
        throw new Error(`${where}: RETR ${got.check.number} is not what Dovecot sent (sha256 ${got.check.sha256.slice(0, 12)}, ${got.check.length} bytes; direct ${direct.check.sha256.slice(0, 12)}, ${direct.check.length} bytes)`);
      }
      if (got.bytes !== direct.bytes) throw new Error(`${where}: ${got.bytes} bytes received for all RETRs, ${direct.bytes} direct`);
      checked.add(got.check.number);
    };

    const warmUpSessions = Math.max(...SESSIONS);
    const warmDirect = (await measure('direct', warmUpSessions, 1)).result;
    for (const target of ['inspecting', 'relay', 'pipe'] as const) {
      for (let pass = 0; pass < WARMUP_PASSES; pass++) verify(warmDirect, target, warmUpSessions, (await measure(target, warmUpSessions, 1)).result);
    }

    const samples = new Map<string, Measurement[]>();
    const key = (target: Target, sessions: number): string => `${target}/${sessions}`;
    for (let round = 0; round < ROUNDS; round++) {
      for (const sessions of SESSIONS) {
        // A different message each time, the same one for the three targets.
        const check = 1 + ((round * SESSIONS.length + SESSIONS.indexOf(sessions)) * 37) % MESSAGES;
        let direct: JobResult | undefined;
        for (const target of TARGETS) {
          const { measurement, result } = await measure(target, sessions, check);
          if (direct === undefined) direct = result;
          else verify(direct, target, sessions, result);
          samples.set(key(target, sessions), [...(samples.get(key(target, sessions)) ?? []), measurement]);
        }
      }
    }
    const rss = await peakRssMb();

    const summary = (target: Target, sessions: number): Measurement => {
      const list = samples.get(key(target, sessions)) ?? [];
      return {
        perSecond: median(list.map((entry) => entry.perSecond)),
        megabytesPerSecond: median(list.map((entry) => entry.megabytesPerSecond)),
        retrMs: median(list.map((entry) => entry.retrMs)),
        cpuMs: median(list.map((entry) => entry.cpuMs)),
      };
    };
    const results = SESSIONS.map((sessions) => ({ sessions, direct: summary('direct', sessions), inspecting: summary('inspecting', sessions), relay: summary('relay', sessions), pipe: summary('pipe', sessions) }));
    const machine = `${cpus().length} cores, ${cpus()[0]?.model ?? '?'}, node ${process.version}`;
    const rate = (value: Measurement): string => `${value.perSecond.toFixed(0)} msg/s, ${value.megabytesPerSecond.toFixed(1)} MB/s`;
    const latency = (value: Measurement, direct: Measurement): string => `${value.retrMs.toFixed(2)} ms (+${(value.retrMs - direct.retrMs).toFixed(2)} ms)`;
    const rows = [
      ['benchmark', 'direct (Dovecot)', 'through mailmoat (inspecting)', 'mailmoat vs direct', 'target', 'mailmoat, inspect.pop3: false', 'Node pipe proxy (reference)'],
      ...results.map(({ sessions, direct, inspecting, relay, pipe }) => [
        `RETR, ${sessions} session${sessions === 1 ? '' : 's'}, ${MESSAGES} msgs`,
        rate(direct),
        rate(inspecting),
        `ratio ${(inspecting.perSecond / direct.perSecond).toFixed(2)}`,
        '>= 0.50',
        `${rate(relay)} (ratio ${(relay.perSecond / direct.perSecond).toFixed(2)})`,
        `${rate(pipe)} (ratio ${(pipe.perSecond / direct.perSecond).toFixed(2)})`,
      ]),
      ...results.map(({ sessions, direct, inspecting, relay, pipe }) => [
        `mean time per RETR, ${sessions} session${sessions === 1 ? '' : 's'}`,
        `${direct.retrMs.toFixed(2)} ms`,
        latency(inspecting, direct),
        `+${(inspecting.retrMs - direct.retrMs).toFixed(2)} ms`,
        '',
        latency(relay, direct),
        latency(pipe, direct),
      ]),
      ...results.map(({ sessions, inspecting, relay, pipe }) => [`proxy CPU per RETR, ${sessions} session${sessions === 1 ? '' : 's'}`, '', `${inspecting.cpuMs.toFixed(2)} ms`, '', '', `${relay.cpuMs.toFixed(2)} ms`, `${pipe.cpuMs.toFixed(2)} ms`]),
      ...results.map(({ sessions, inspecting, relay, pipe }) => [
        `vs the pipe proxy (same run), ${sessions} session${sessions === 1 ? '' : 's'}`,
        '',
        `ratio ${(inspecting.perSecond / pipe.perSecond).toFixed(2)}`,
        '',
        '>= 0.60 / >= 0.85',
        `ratio ${(relay.perSecond / pipe.perSecond).toFixed(2)}`,
        'ratio 1.00',
      ]),
      ['bench process (both mailmoat listeners) peak resident memory', '', `${rss.toFixed(0)} MB`, '', '', '', ''],
    ];
    const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
    console.log(`mailmoat POP3 RETR bench (${machine}; ${MESSAGES} distinct messages of ${(ready.meanBytes / 1024).toFixed(0)} KB from Dovecot; median of ${ROUNDS} rounds)`);
    for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd());
    console.log(`checked: every RETR +OK and complete, byte totals equal to direct, messages ${[...checked].sort((a, b) => a - b).join(', ')} byte for byte as Dovecot sent them (Dovecot's copy = the seeded message), a pass verdict from mailmoat for each of its RETRs`);
    await mkdir(new URL('../../bench/out/', import.meta.url), { recursive: true });
    await writeFile(new URL('../../bench/out/pop3-retr.json', import.meta.url), JSON.stringify({ machine, rounds: ROUNDS, messages: MESSAGES, messageBytes: ready.meanBytes, results, peakRssMb: rss, samples: Object.fromEntries(samples) }, null, 2));
    await inspector.close();
  } finally {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    pipe?.close();
    if (child.exitCode === null && child.connected) child.send({ kind: 'stop' } satisfies ToChild);
    await exited;
  }
}

if (values.client) await client();
else await main();
