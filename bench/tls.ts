/**
 * SMTP STARTTLS benchmark: what intercepting TLS on both legs costs, next to the
 * same traffic in plaintext, in one run on this machine. The upstream is a real
 * Postfix smtpd offering STARTTLS (bench/postfix.ts, certificate from
 * bench/test-pki.ts) that relays every message to a Postfix smtp-sink. mailmoat
 * runs in this process with one policy and two listeners in front of that smtpd,
 * both with `inspect.smtp: all` (every message captured, inspected, passed):
 *   mailmoat plain:     `starttls: strip`: client -> mailmoat -> Postfix, no TLS;
 *   mailmoat intercept: `starttls: intercept`: the client does STARTTLS with
 *                       mailmoat (a leaf from mailmoat's CA), mailmoat does
 *                       STARTTLS with Postfix (verified against the test CA);
 * and, for reference, direct to Postfix with and without STARTTLS (the client
 * verifying Postfix's own certificate).
 *
 * K concurrent sessions (default 10) send N distinct messages of 100 KB (a text
 * part and a base64 attachment of fresh random bytes named like a PDF; default
 * 500) between them, taking the next message off a shared queue. Each session:
 * connect, EHLO, [STARTTLS, TLS handshake, EHLO again], then per message MAIL,
 * RCPT, DATA, the message and the dot, one command at a time, then QUIT. The
 * timed phase runs from the first connect to the last 250 after a dot, so it
 * includes connecting and the TLS handshakes (their mean is reported apart as
 * session setup). Per target: messages/s and MB/s (message bytes sent), the
 * ratio intercept/plain, the mean time per message (MAIL sent to the 250 after
 * the dot received; at 10 sessions this includes queueing), this process's CPU
 * time per message (mailmoat's; next to nothing for direct) and its peak
 * resident memory while the measurement ran (VmHWM, reset before each one
 * through /proc/self/clear_refs to the resident size at that moment, garbage
 * not yet collected included; the whole process: both listeners, so the direct
 * columns show its idle baseline).
 *
 * The SMTP clients and the messages live in a child process (this file with
 * --client), so they count neither in that memory nor on the proxy's event loop.
 * Nothing is assumed: every reply must carry the expected code (220, 250, 354,
 * 250 "queued as" after each dot, 221); STARTTLS must be offered where TLS is
 * used and not by the strip listener, and never again inside TLS; the client
 * verifies the certificate it gets and checks its issuer (mailmoat's CA when
 * intercepted, the test CA direct); mailmoat must report one transaction per
 * message, inspected, passed, with TLS as configured and the byte total sent;
 * Postfix's log must show one TLS session per client session for the TLS
 * targets and none for the plain ones; and every message must have left
 * Postfix's queue for smtp-sink (status=sent) before the next measurement
 * starts, so no measurement pays for the previous one's deliveries. A smaller
 * warm-up pass per target precedes the rounds; rounds run the four targets in
 * turn and each figure is the median over the rounds (peak memory: the highest).
 *
 * Usage: node dist/bench/tls.js [--rounds 3 --messages 500 --sessions 10 --warm-up 100]
 * Needs: root, postfix (bash scripts/setup.sh bench installs it), openssl.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { figuresMessage } from './messages.js';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, listening } from './ports.js';
import { startPostfix, type RunningPostfix } from './postfix.js';
import { createTestPki } from './test-pki.js';
import { validatePolicy } from '../src/config/load.js';
import { createMailInspector } from '../src/inspect/create.js';
import type { MailInspector } from '../src/inspect/inspector.js';
import { createLogger, type TransactionSummary } from '../src/observe/log.js';
import { startProxy, type RunningProxy } from '../src/main.js';
import { initCa } from '../src/tls/ca.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    messages: { type: 'string', default: '500' },
    sessions: { type: 'string', default: '10' },
    'warm-up': { type: 'string', default: '100' },
    /** Internal: this process is the child that holds the messages and runs the SMTP clients. */
    client: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(values.rounds);
const MESSAGES = Number(values.messages);
const SESSIONS = Number(values.sessions);
const WARM_UP = Math.min(Number(values['warm-up']), MESSAGES);
const MESSAGE_BYTES = 100 * 1024;
const SENDER = 'bench@example.org';
const RECIPIENT = 'sink@example.net';
/** A reply that stalls this long fails the bench rather than hanging it. */
const CLIENT_TIMEOUT_MS = 30_000;
/** How long Postfix may take to hand a measurement's messages to smtp-sink. */
const QUEUE_DRAIN_TIMEOUT_MS = 120_000;
/** Issuer common names: mailmoat's CA (initCa's default) and the test upstream CA (bench/test-pki.ts). */
const MAILMOAT_CA_NAME = 'mailmoat interception CA';
const UPSTREAM_CA_NAME = 'mailmoat test upstream CA';

// ---- messages parent and child exchange --------------------------------------------

interface Job {
  port: number;
  sessions: number;
  /** Messages 1..count are sent. */
  count: number;
  /** STARTTLS, trusting this CA file and expecting a certificate issued by `issuer`; undefined: plaintext. */
  tls: { caFile: string; issuer: string } | undefined;
  /** Whether the first EHLO reply must offer STARTTLS (it must not when false). */
  offersStartTls: boolean;
}

interface JobResult {
  /** First connect to the last 250 after a dot. */
  seconds: number;
  /** Message bytes sent (DATA content, without the final dot). */
  bytes: number;
  /** Mean time from MAIL sent to the 250 after the dot received. */
  messageMs: number;
  /** Mean time from connect to the (last) EHLO reply: with TLS, the STARTTLS exchange and handshake included. */
  setupMs: number;
  /** Distinct "protocol cipher" pairs the sessions negotiated. */
  tls: string[];
}

type ToChild = { kind: 'run'; job: Job } | { kind: 'stop' };
type FromChild = { kind: 'ready'; meanBytes: number } | { kind: 'result'; result: JobResult } | { kind: 'error'; message: string };

// ---- the child: messages, SMTP clients ---------------------------------------------------

/** A distinct message of about `totalBytes` (bench/messages.ts), checked to go out unstuffed. */
function benchMessage(index: number, totalBytes: number): Buffer {
  const message = figuresMessage(index, totalBytes, { from: `Bench Sender <${SENDER}>`, to: `Bench Sink <${RECIPIENT}>`, idPrefix: 'tls-bench' });
  // No line starts with a dot (headers, base64, boundaries), so the message goes out unstuffed.
  if (/(^|\n)\./.test(message.toString('latin1'))) throw new Error('a bench message line starts with a dot');
  return message;
}

const END_OF_DATA = Buffer.from('.\r\n', 'latin1');

interface Reply {
  code: number;
  lines: string[];
}

/**
 * A minimal SMTP client: one command at a time, every reply read whole (its
 * last line is "NNN text" or "NNN") and its code checked. STARTTLS moves the
 * reading onto a TLS socket over the same connection.
 */
class SmtpConnection {
  private socket: Socket | TLSSocket;
  private buffer = '';
  private lines: string[] = [];
  private pending: { resolve: (reply: Reply) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  private readonly onError = (error: Error): void => this.fail(error);
  private readonly onClose = (): void => this.fail(new Error('the server closed the connection'));

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    this.bind(socket);
  }

  static async open(port: number): Promise<SmtpConnection> {
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return new SmtpConnection(socket);
  }

  /** Sends the line (none: the greeting) and resolves with the reply; rejects unless its code is `expect`. */
  async command(line: string | undefined, expect: number): Promise<Reply> {
    if (line !== undefined) this.socket.write(`${line}\r\n`);
    return this.expect(line ?? 'greeting', expect);
  }

  /** Sends the message and the final dot, and checks the reply. */
  async data(wire: Buffer): Promise<Reply> {
    this.socket.write(wire);
    return this.expect('end of data', 250);
  }

  /** STARTTLS (220 expected), then a verified TLS handshake as `servername` trusting `ca`. */
  async startTls(ca: string, servername: string): Promise<TLSSocket> {
    await this.command('STARTTLS', 220);
    if (this.buffer !== '' || this.lines.length > 0) throw new Error('plaintext after the 220 to STARTTLS');
    const raw = this.socket;
    this.unbind(raw);
    const secure = tlsConnect({ socket: raw, ca: [ca], servername });
    await Promise.race([once(secure, 'secureConnect'), sleep(CLIENT_TIMEOUT_MS).then(() => Promise.reject(new Error('TLS handshake timed out')))]);
    this.socket = secure;
    this.bind(secure);
    return secure;
  }

  async quit(): Promise<void> {
    await this.command('QUIT', 221);
    this.failure = new Error('closed');
    this.unbind(this.socket);
    this.socket.on('error', () => undefined);
    this.socket.end();
  }

  private bind(socket: Socket): void {
    socket.setTimeout(CLIENT_TIMEOUT_MS, () => this.fail(new Error(`no reply for ${CLIENT_TIMEOUT_MS / 1000} s`)));
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  private unbind(socket: Socket): void {
    socket.setTimeout(0);
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
  }

  private expect(what: string, code: number): Promise<Reply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.pending !== undefined) return Promise.reject(new Error('one command at a time'));
    return new Promise<Reply>((resolve, reject) => {
      this.pending = { resolve, reject };
    }).then((reply) => {
      if (reply.code !== code) throw new Error(`${what}: expected ${code}, got ${reply.lines.join(' | ')}`);
      return reply;
    });
  }

  private receive(chunk: Buffer): void {
    this.buffer += chunk.toString('latin1');
    for (let end = this.buffer.indexOf('\r\n'); end !== -1; end = this.buffer.indexOf('\r\n')) {
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      if (!/^\d{3}([ -]|$)/.test(line)) return this.fail(new Error(`not an SMTP reply line: ${JSON.stringify(line.slice(0, 80))}`));
      this.lines.push(line);
      if (line[3] === '-') continue;
      const pending = this.pending;
      if (pending === undefined) return this.fail(new Error(`a reply nobody asked for: ${line}`));
      const reply = { code: Number(line.slice(0, 3)), lines: this.lines };
      this.pending = undefined;
      this.lines = [];
      pending.resolve(reply);
    }
    if (this.buffer.length > 4096) this.fail(new Error('a reply line over 4 KB'));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
    this.socket.destroy();
  }
}

const offersStartTls = (ehlo: Reply): boolean => ehlo.lines.slice(1).some((line) => line.slice(4).trim().toUpperCase() === 'STARTTLS');

/** Messages 1..count once, over `sessions` sessions that take the next message in turn. */
async function load(job: Job, wires: readonly Buffer[], caPem: (file: string) => Promise<string>): Promise<JobResult> {
  const ca = job.tls === undefined ? undefined : await caPem(job.tls.caFile);
  const negotiated = new Set<string>();
  let next = 0;
  let bytes = 0;
  let messageMs = 0;
  let setupMs = 0;
  let lastDot = 0;
  const started = performance.now();
  const connections = await Promise.all(
    Array.from({ length: job.sessions }, async () => {
      const opened = performance.now();
      const connection = await SmtpConnection.open(job.port);
      await connection.command(undefined, 220);
      const ehlo = await connection.command('EHLO bench.example.org', 250);
      if (offersStartTls(ehlo) !== job.offersStartTls) throw new Error(`STARTTLS ${job.offersStartTls ? 'not offered' : 'offered'}: ${ehlo.lines.join(' | ')}`);
      if (job.tls !== undefined && ca !== undefined) {
        const secure = await connection.startTls(ca, 'localhost');
        const issuer = secure.getPeerCertificate().issuer.CN;
        if (issuer !== job.tls.issuer) throw new Error(`the server's certificate was issued by ${String(issuer)}, not ${job.tls.issuer}`);
        negotiated.add(`${secure.getProtocol() ?? '?'} ${secure.getCipher().name}`);
        const again = await connection.command('EHLO bench.example.org', 250);
        if (offersStartTls(again)) throw new Error('STARTTLS offered again inside TLS');
      }
      setupMs += performance.now() - opened;
      for (let index = next++; index < job.count; index = next++) {
        const wire = wires[index];
        if (wire === undefined) throw new Error(`no message ${index + 1}`);
        const sent = performance.now();
        await connection.command(`MAIL FROM:<${SENDER}>`, 250);
        await connection.command(`RCPT TO:<${RECIPIENT}>`, 250);
        await connection.command('DATA', 354);
        const reply = await connection.data(wire);
        if (!/queued as/i.test(reply.lines.join(' '))) throw new Error(`the 250 after the dot is not Postfix's: ${reply.lines.join(' | ')}`);
        lastDot = performance.now();
        messageMs += lastDot - sent;
        bytes += wire.length - END_OF_DATA.length;
      }
      return connection;
    }),
  );
  const seconds = (lastDot - started) / 1000;
  await Promise.all(connections.map((connection) => connection.quit()));
  return { seconds, bytes, messageMs: messageMs / job.count, setupMs: setupMs / job.sessions, tls: [...negotiated] };
}

async function client(): Promise<void> {
  const send = (message: FromChild): void => void process.send?.(message);
  process.on('disconnect', () => process.exit(0));
  try {
    const wires = Array.from({ length: MESSAGES }, (_, index) => Buffer.concat([benchMessage(index, MESSAGE_BYTES), END_OF_DATA]));
    const meanBytes = wires.reduce((sum, wire) => sum + wire.length - END_OF_DATA.length, 0) / MESSAGES;
    const pems = new Map<string, string>();
    const caPem = async (file: string): Promise<string> => {
      const pem = pems.get(file) ?? (await readFile(file, 'utf8'));
      pems.set(file, pem);
      return pem;
    };
    process.on('message', (message: ToChild) => {
      if (message.kind === 'stop') return void process.exit(0);
      load(message.job, wires, caPem).then(
        (result) => send({ kind: 'result', result }),
        (error: unknown) => send({ kind: 'error', message: error instanceof Error ? error.message : String(error) }),
      );
    });
    send({ kind: 'ready', meanBytes });
  } catch (error) {
    send({ kind: 'error', message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
}

// ---- the parent: Postfix, smtp-sink, mailmoat, rounds, checks, the table ---------------------

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

/** Resets VmHWM to the current resident size (Linux 4.0+), so the next reading is this measurement's peak. */
async function resetPeakRss(): Promise<boolean> {
  return writeFile('/proc/self/clear_refs', '5').then(
    () => true,
    () => false,
  );
}

async function startSink(): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const child = spawn('smtp-sink', [...(asRoot ? ['-u', 'nobody'] : []), `127.0.0.1:${port}`, '100'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.once('error', () => undefined);
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`smtp-sink exited (${child.exitCode ?? child.signalCode}): ${stderr}`);
    if (await listening(port)) return { port, child };
    await sleep(50);
  }
  child.kill();
  throw new Error(`smtp-sink never listened on 127.0.0.1:${port}: ${stderr}`);
}

/** The share of all cores' time that was not idle over the next `ms` (/proc/stat), in percent. */
async function machineBusy(ms: number): Promise<number> {
  const sample = async (): Promise<{ total: number; idle: number }> => {
    const fields = (/^cpu\s+(.*)$/m.exec(await readFile('/proc/stat', 'utf8'))?.[1] ?? '').trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal
    const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
    return { total, idle: (fields[3] ?? 0) + (fields[4] ?? 0) };
  };
  const before = await sample();
  await sleep(ms);
  const after = await sample();
  const total = after.total - before.total;
  return total > 0 ? (100 * (total - (after.idle - before.idle))) / total : NaN;
}

type Target = 'plain' | 'intercept' | 'directPlain' | 'directTls';
const TARGETS: readonly Target[] = ['directPlain', 'plain', 'directTls', 'intercept'];

interface Measurement {
  perSecond: number;
  megabytesPerSecond: number;
  messageMs: number;
  setupMs: number;
  /** This process's CPU time per message (mailmoat's; next to nothing for direct). */
  cpuMs: number;
  /** This process's peak resident memory during the measurement (the whole run's when it cannot be reset). */
  peakRssMb: number;
}

async function main(): Promise<void> {
  if (![MESSAGES, SESSIONS, WARM_UP, ROUNDS].every((value) => Number.isInteger(value) && value >= 1)) {
    throw new Error('--rounds, --messages, --sessions and --warm-up take positive integers');
  }
  // Other work on the machine skews every column: how busy it was just before goes into the report.
  const busyAtStart = await machineBusy(1000);
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-bench-tls-'));
  let child: ChildProcess | undefined;
  let sink: ChildProcess | undefined;
  let postfix: RunningPostfix | undefined;
  let proxy: RunningProxy | undefined;
  let inspector: MailInspector | undefined;
  let cleaning: Promise<void> | undefined;
  /** Everything this run started, stopped once: after the run, on failure, on SIGINT/SIGTERM. */
  const cleanUp = (): Promise<void> =>
    (cleaning ??= (async () => {
      await proxy?.close().catch(() => undefined);
      await inspector?.close().catch(() => undefined);
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit').catch(() => undefined);
        if (child.connected) child.send({ kind: 'stop' } satisfies ToChild);
        else child.kill();
        await Promise.race([exited, sleep(5000).then(() => child?.kill('SIGKILL'))]);
      }
      if (sink !== undefined && sink.exitCode === null && sink.signalCode === null) {
        const exited = once(sink, 'exit').catch(() => undefined);
        sink.kill();
        await Promise.race([exited, sleep(5000).then(() => sink?.kill('SIGKILL'))]);
      }
      await postfix?.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`${signal}: stopping Postfix, smtp-sink and the client process`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const pki = await createTestPki(join(dir, 'upstream-pki'));
    const ca = await initCa(join(dir, 'mailmoat-ca'));
    const started = await startSink();
    sink = started.child;
    const sinkPort = started.port;
    postfix = await startPostfix({ certFile: pki.certFile, keyFile: pki.keyFile, relayPort: sinkPort });
    const maillog = join(postfix.dir, 'maillog');
    child = fork(fileURLToPath(import.meta.url), ['--client', '--messages', String(MESSAGES)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const loadProcess = child;

    const upstream = `127.0.0.1:${postfix.port}`;
    const policy = validatePolicy(
      {
        listeners: [
          { protocol: 'smtp', listen: '127.0.0.1:0', upstream, starttls: 'strip' },
          { protocol: 'smtp', listen: '127.0.0.1:0', upstream, starttls: 'intercept' },
        ],
        inspect: { smtp: 'all' },
        tls: { ca_cert: ca.certPath, ca_key: ca.keyPath, upstream_ca: pki.caFile },
        quarantine: { dir: join(dir, 'quarantine') },
        // Every session comes from 127.0.0.1: the per-address admission limits are not what is measured.
        limits: { max_sessions_per_address: 10_000, max_connections_per_address_per_minute: 1_000_000 },
      },
      'bench',
    );
    inspector = await createMailInspector(policy);
    const logger = createLogger('silent');
    proxy = await startProxy(policy, inspector, logger);
    const transactions: Record<'plain' | 'intercept', TransactionSummary[]> = { plain: [], intercept: [] };
    const refusals: string[] = [];
    (['plain', 'intercept'] as const).forEach((target, index) => {
      proxy?.listeners[index]?.on('transaction', (summary) => transactions[target].push(summary));
      proxy?.listeners[index]?.on('limit', (limit) => refusals.push(`${target}: ${limit}`));
    });
    const ports: Record<Target, number> = { plain: proxy.addresses[0]?.port ?? 0, intercept: proxy.addresses[1]?.port ?? 0, directPlain: postfix.port, directTls: postfix.port };
    const jobFor = (target: Target, count: number): Job => ({
      port: ports[target],
      sessions: SESSIONS,
      count,
      tls: target === 'intercept' ? { caFile: ca.certPath, issuer: MAILMOAT_CA_NAME } : target === 'directTls' ? { caFile: pki.caFile, issuer: UPSTREAM_CA_NAME } : undefined,
      offersStartTls: target !== 'plain',
    });

    const ready = await nextFromChild(loadProcess);
    if (ready.kind !== 'ready') throw new Error(`the client process could not start: ${ready.kind === 'error' ? ready.message : ready.kind}`);

    /** TLS sessions Postfix's smtpd established, messages it handed to smtp-sink, and any it could not. */
    const postfixLog = async (): Promise<{ text: string; tls: number; sent: number; failed: number }> => {
      const text = await readFile(maillog, 'utf8').catch(() => '');
      return {
        text,
        tls: text.match(/TLS connection established from /g)?.length ?? 0,
        sent: text.match(/ status=sent /g)?.length ?? 0,
        failed: text.match(/ status=(deferred|bounced) /g)?.length ?? 0,
      };
    };
    /** How much of the log earlier measurements account for. */
    let logSeen = 0;
    let accepted = 0;
    let tlsSessions = 0;
    /** "protocol cipher" pairs per target, as the load generator and as Postfix's smtpd saw them. */
    const clientCiphers: Record<Target, Set<string>> = { plain: new Set(), intercept: new Set(), directPlain: new Set(), directTls: new Set() };
    const postfixCiphers: Record<Target, Set<string>> = { plain: new Set(), intercept: new Set(), directPlain: new Set(), directTls: new Set() };
    let canResetRss = true;

    const measure = async (target: Target, count: number): Promise<Measurement> => {
      const where = `${target}, ${count} messages`;
      if (target === 'plain' || target === 'intercept') transactions[target].length = 0;
      canResetRss = canResetRss && (await resetPeakRss());
      const cpu = process.cpuUsage();
      loadProcess.send({ kind: 'run', job: jobFor(target, count) } satisfies ToChild);
      const answer = await nextFromChild(loadProcess);
      const used = process.cpuUsage(cpu);
      const rss = await peakRssMb();
      if (answer.kind !== 'result') throw new Error(`${where}: ${answer.kind === 'error' ? answer.message : answer.kind}`);
      const result = answer.result;
      for (const cipher of result.tls) clientCiphers[target].add(cipher);
      if (refusals.length > 0) throw new Error(`${where}: mailmoat refused connections: ${refusals.join(', ')}`);
      if (target === 'plain' || target === 'intercept') {
        const seen = transactions[target];
        const tls = target === 'intercept' ? 'intercepted' : 'none';
        const wrong = seen.filter((summary) => summary.verdict !== 'pass' || !summary.inspected || summary.tls !== tls || !/queued as/i.test(summary.upstreamReply));
        if (seen.length !== count || wrong.length > 0) {
          throw new Error(`${where}: mailmoat reported ${seen.length} transactions for ${count} messages, ${wrong.length} not an inspected pass with tls ${tls} and Postfix's "queued as"`);
        }
        const size = seen.reduce((sum, summary) => sum + summary.size, 0);
        if (size !== result.bytes) throw new Error(`${where}: mailmoat captured ${size} bytes, the clients sent ${result.bytes}`);
      }
      // Postfix: one TLS session per client session (TLS targets), none otherwise; the queue empty again.
      accepted += count;
      if (target === 'intercept' || target === 'directTls') tlsSessions += SESSIONS;
      const deadline = Date.now() + QUEUE_DRAIN_TIMEOUT_MS;
      let log = await postfixLog();
      while ((log.sent < accepted || log.tls < tlsSessions) && log.failed === 0 && Date.now() < deadline) {
        await sleep(100);
        log = await postfixLog();
      }
      for (const match of log.text.slice(logSeen).matchAll(/TLS connection established from [^:]*: (\S+) with cipher (\S+)/g)) postfixCiphers[target].add(`${match[1]} ${match[2]}`);
      logSeen = log.text.length;
      if (log.failed > 0) throw new Error(`${where}: Postfix could not deliver ${log.failed} messages to smtp-sink (see ${maillog})`);
      if (log.sent !== accepted) throw new Error(`${where}: Postfix delivered ${log.sent} of ${accepted} messages to smtp-sink within ${QUEUE_DRAIN_TIMEOUT_MS / 1000} s`);
      if (log.tls !== tlsSessions) throw new Error(`${where}: Postfix logged ${log.tls} TLS sessions, ${tlsSessions} expected`);
      return {
        perSecond: count / result.seconds,
        megabytesPerSecond: result.bytes / result.seconds / 1e6,
        messageMs: result.messageMs,
        setupMs: result.setupMs,
        cpuMs: (used.user + used.system) / 1000 / count,
        peakRssMb: rss,
      };
    };

    for (const target of TARGETS) await measure(target, WARM_UP);
    const samples: Record<Target, Measurement[]> = { plain: [], intercept: [], directPlain: [], directTls: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of TARGETS) samples[target].push(await measure(target, MESSAGES));
    }
    const wholeRunRss = canResetRss ? undefined : await peakRssMb();

    const summary = (target: Target): Measurement => {
      const list = samples[target];
      return {
        perSecond: median(list.map((entry) => entry.perSecond)),
        megabytesPerSecond: median(list.map((entry) => entry.megabytesPerSecond)),
        messageMs: median(list.map((entry) => entry.messageMs)),
        setupMs: median(list.map((entry) => entry.setupMs)),
        cpuMs: median(list.map((entry) => entry.cpuMs)),
        peakRssMb: Math.max(...list.map((entry) => entry.peakRssMb)),
      };
    };
    const results = { plain: summary('plain'), intercept: summary('intercept'), directPlain: summary('directPlain'), directTls: summary('directTls') };
    const { plain, intercept, directPlain, directTls } = results;
    const ratio = intercept.perSecond / plain.perSecond;
    const machine = `${cpus().length} cores, ${cpus()[0]?.model ?? '?'}, node ${process.version}, ${busyAtStart.toFixed(0)}% busy in the second before the start`;
    const rate = (value: Measurement): string => `${value.perSecond.toFixed(0)} msg/s, ${value.megabytesPerSecond.toFixed(1)} MB/s`;
    const vs = (value: number, base: number): string => `${value >= base ? '+' : ''}${(value - base).toFixed(2)} ms`;
    const rows = [
      ['benchmark', 'mailmoat plain (strip)', 'mailmoat intercept (TLS both legs)', 'intercept vs plain', 'direct to Postfix, plain', 'direct to Postfix, STARTTLS'],
      [
        `throughput, ${SESSIONS} sessions, ${MESSAGES} msgs`,
        `${rate(plain)} (ratio ${(plain.perSecond / directPlain.perSecond).toFixed(2)} to direct)`,
        `${rate(intercept)} (ratio ${(intercept.perSecond / directTls.perSecond).toFixed(2)} to direct)`,
        `ratio ${ratio.toFixed(2)}`,
        rate(directPlain),
        `${rate(directTls)} (ratio ${(directTls.perSecond / directPlain.perSecond).toFixed(2)} to plain)`,
      ],
      ['mean time per message (MAIL to 250)', `${plain.messageMs.toFixed(2)} ms`, `${intercept.messageMs.toFixed(2)} ms`, vs(intercept.messageMs, plain.messageMs), `${directPlain.messageMs.toFixed(2)} ms`, `${directTls.messageMs.toFixed(2)} ms`],
      ['mean session setup (connect to last EHLO)', `${plain.setupMs.toFixed(2)} ms`, `${intercept.setupMs.toFixed(2)} ms`, vs(intercept.setupMs, plain.setupMs), `${directPlain.setupMs.toFixed(2)} ms`, `${directTls.setupMs.toFixed(2)} ms`],
      ['mailmoat CPU per message', `${plain.cpuMs.toFixed(2)} ms`, `${intercept.cpuMs.toFixed(2)} ms`, `${vs(intercept.cpuMs, plain.cpuMs)} (x${(intercept.cpuMs / plain.cpuMs).toFixed(2)})`, `(${directPlain.cpuMs.toFixed(2)} ms)`, `(${directTls.cpuMs.toFixed(2)} ms)`],
      wholeRunRss === undefined
        ? ['mailmoat process peak resident memory', `${plain.peakRssMb.toFixed(0)} MB`, `${intercept.peakRssMb.toFixed(0)} MB`, `${intercept.peakRssMb >= plain.peakRssMb ? '+' : ''}${(intercept.peakRssMb - plain.peakRssMb).toFixed(0)} MB`, `(${directPlain.peakRssMb.toFixed(0)} MB)`, `(${directTls.peakRssMb.toFixed(0)} MB)`]
        : ['mailmoat process peak resident memory (whole run)', `${wholeRunRss.toFixed(0)} MB`, '', '', '', ''],
    ];
    const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
    const tlsInUse = {
      interceptClientLeg: [...clientCiphers.intercept],
      interceptUpstreamLeg: [...postfixCiphers.intercept],
      directTls: [...postfixCiphers.directTls],
    };
    console.log(`mailmoat STARTTLS bench (${machine}; ${MESSAGES} distinct messages of ${(ready.meanBytes / 1024).toFixed(0)} KB, ${SESSIONS} sessions, Postfix ${upstream} relaying to smtp-sink; inspect.smtp: all; median of ${ROUNDS} rounds)`);
    for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd());
    console.log(`TLS: client-mailmoat ${tlsInUse.interceptClientLeg.join(', ')} (mailmoat's leaf, RSA 2048); mailmoat-Postfix ${tlsInUse.interceptUpstreamLeg.join(', ')} and client-Postfix ${tlsInUse.directTls.join(', ')} as Postfix logged them (its leaf: EC P-256)`);
    console.log(`checked: every reply as expected (250 "queued as" after each dot), STARTTLS offered only where it should be, certificates verified and from the expected CA, mailmoat reported an inspected pass per message with the bytes sent, Postfix logged ${tlsSessions} TLS sessions (${SESSIONS} per TLS measurement, none for plain) and delivered all ${accepted} messages to smtp-sink`);
    await mkdir(new URL('../../bench/out/', import.meta.url), { recursive: true });
    await writeFile(
      new URL('../../bench/out/tls.json', import.meta.url),
      JSON.stringify({ machine, rounds: ROUNDS, messages: MESSAGES, sessions: SESSIONS, warmUp: WARM_UP, messageBytes: ready.meanBytes, results, ratio, tls: tlsInUse, ...(wholeRunRss === undefined ? {} : { wholeRunPeakRssMb: wholeRunRss }), samples }, null, 2),
    );
  } finally {
    await cleanUp();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (values.client) await client();
else await main();
