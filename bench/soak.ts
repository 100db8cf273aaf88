/**
 * Soak (not in CI): `mailmoat start` with two workers in front of a recording upstream,
 * fed for `--minutes` (default 10) with mixed traffic from eight senders: clean
 * messages (must arrive byte for byte), flagged ones (an executable attachment: must
 * arrive rewritten, once), and hostile sessions (smuggling attempts with bare LF, an
 * over-long command line, unknown verbs, a client that leaves mid-DATA, an early
 * talker), while a fault is injected every `--fault-seconds` (default 4): kill -9 of a
 * worker, an upstream that dies mid-DATA or after the dot for one message, and every
 * fifth fault kill -9 of the supervisor (then a restart). It prints one tally at the end:
 * LOST, DUPLICATE-AFTER-250, CORRUPTED (targets: 0), replies per class, faults injected,
 * spool files left after the final stop (target: 0), and the peak resident memory of
 * the mailmoat processes.
 *
 * Usage: npm run build && node dist/bench/soak.js [--minutes 10] [--fault-seconds 4] [--seed N]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePort, listening } from './ports.js';
import { RecordingSink } from './recording-sink.js';
import { seeded, sendTrial, tally, trialIdOf, trialMessage, type Trial } from './fault-trials.js';
import { isAlive } from '../src/process-alive.js';

const CLI = new URL('../src/cli.js', import.meta.url).pathname;
const SENDERS = 8;
const SUPERVISOR_KILL_EVERY_FAULTS = 5;
const RETRY_PAUSE_MS = 250;

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, 'fault-seconds': { type: 'string', default: '4' }, seed: { type: 'string' } } });
const durationMs = Number(values.minutes) * 60_000;
const faultEveryMs = Number(values['fault-seconds']) * 1000;
const seed = Number(values.seed ?? Math.floor(Math.random() * 2 ** 31));
const random = seeded(seed);
const between = (min: number, max: number): number => Math.floor(min + random() * (max - min));

interface Mailmoat {
  child: ChildProcess;
  port: number;
  exited: Promise<unknown>;
}

const dir = await mkdtemp(join(tmpdir(), 'mailmoat-soak-'));
const spoolDir = join(dir, 'spool');
const sink = await RecordingSink.start();
let peakRssKb = 0;

async function startMailmoat(): Promise<Mailmoat> {
  const port = await freePort();
  const policy = join(dir, 'policy.yaml');
  await writeFile(policy, `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:${sink.port}\nquarantine:\n  dir: ${join(dir, 'quarantine')}\nadmin:\n  listen: ""\nworkers: 2\nspool:\n  dir: ${spoolDir}\n  memory_threshold_bytes: 65536\nlog:\n  level: warn\n`);
  await mkdir(spoolDir, { recursive: true });
  // Logs at warn go to our stdout: the spool sweeps and the workers' deaths show there.
  const child = spawn(process.execPath, [CLI, 'start', '--policy', policy], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = once(child, 'exit');
  while (!(await listening(port))) await sleep(50);
  return { child, port, exited };
}

/** The supervisor's children (its workers, a managed clamd if any), from /proc. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const flaggedMessage = (id: string): Buffer =>
  Buffer.from(
    [`From: <sender@example.org>`, `Subject: flagged ${id}`, `X-Trial: ${id}`, 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'see attached', '--b', 'Content-Type: application/octet-stream; name="setup.exe"', 'Content-Disposition: attachment; filename="setup.exe"', 'Content-Transfer-Encoding: base64', '', Buffer.from('MZ\x90\x00setup').toString('base64'), '--b--', ''].join('\r\n'),
    'latin1',
  );

const HOSTILE = [
  'EHLO h\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: smuggle\n\n.\nMAIL FROM:<evil@example.org>\n.\r\n',
  `EHLO ${'x'.repeat(10_000)}\r\n`,
  'FOO\r\nBAR\r\nBAZ\r\nQUX\r\nFOO\r\nBAR\r\nBAZ\r\nQUX\r\nFOO\r\nBAR\r\nBAZ\r\nQUX\r\n',
  'EHLO h\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: gone\r\n\r\nhalf a message',
  'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
];

/** A hostile session: sends its bytes, reads until the proxy closes or 5 s pass; counts whether the proxy answered. */
function hostile(port: number, script: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let answered = false;
    const done = (): void => {
      socket.destroy();
      resolve(answered);
    };
    const guard = setTimeout(done, 5000);
    socket.on('data', (chunk: Buffer) => {
      answered ||= /^[2345]\d\d/m.test(chunk.toString('latin1'));
      if (!socket.destroyed && chunk.toString('latin1').startsWith('220')) socket.write(script);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(guard);
      done();
    });
  });
}

let mailmoat = await startMailmoat();
const clean: Trial[] = [];
const flagged: Trial[] = [];
let hostileSessions = 0;
let hostileAnswered = 0;
const faults = { workerKills: 0, supervisorKills: 0, upstreamDeaths: 0 };
let serial = 0;
const endsAt = Date.now() + durationMs;

async function sender(): Promise<void> {
  while (Date.now() < endsAt) {
    const kind = random();
    const id = `s${seed}-${++serial}`;
    if (kind < 0.85) {
      const trial = await sendTrial(mailmoat.port, id, kind < 0.6 ? trialMessage(id, between(2_000, 400_000)) : flaggedMessage(id), 60_000);
      (kind < 0.6 ? clean : flagged).push(trial);
      // A sender that got no reply (a kill, or mailmoat restarting) waits a little before its next message, as a retrying MTA would.
      if (trial.reply === 0) await sleep(RETRY_PAUSE_MS);
    } else {
      hostileSessions++;
      if (await hostile(mailmoat.port, HOSTILE[between(0, HOSTILE.length)] as string)) hostileAnswered++;
    }
  }
}

async function injector(): Promise<void> {
  for (let count = 1; Date.now() + faultEveryMs < endsAt; count++) {
    await sleep(faultEveryMs);
    for (const pid of [mailmoat.child.pid ?? 0, ...childrenOf(mailmoat.child.pid ?? 0)]) peakRssKb = Math.max(peakRssKb, rssKb(pid));
    if (count % SUPERVISOR_KILL_EVERY_FAULTS === 0) {
      const workers = childrenOf(mailmoat.child.pid ?? 0);
      mailmoat.child.kill('SIGKILL');
      await mailmoat.exited;
      while (workers.some(isAlive)) await sleep(20);
      faults.supervisorKills++;
      mailmoat = await startMailmoat();
    } else if (random() < 0.7) {
      const workers = childrenOf(mailmoat.child.pid ?? 0);
      const victim = workers[between(0, workers.length)];
      if (victim !== undefined) {
        process.kill(victim, 'SIGKILL');
        faults.workerKills++;
      }
    } else {
      sink.behaviour = random() < 0.5 ? { dieAfterDataBytes: between(1, 50_000) } : { dieAfterDot: true };
      faults.upstreamDeaths++;
      await sleep(300);
      sink.behaviour = {};
    }
  }
}

await Promise.all([injector(), ...Array.from({ length: SENDERS }, sender)]);
mailmoat.child.kill('SIGTERM');
const workers = childrenOf(mailmoat.child.pid ?? 0);
await mailmoat.exited;
while (workers.some(isAlive)) await sleep(20);
await sink.close();

const cleanIds = new Set(clean.map((trial) => trial.id));
const flaggedIds = new Set(flagged.map((trial) => trial.id));
const cleanTally = tally(clean, sink.delivered.filter((message) => !flaggedIds.has(trialIdOf(message) ?? '')));
const flaggedCopies = new Map<string, number>();
for (const message of sink.delivered) {
  const id = trialIdOf(message) ?? '';
  if (flaggedIds.has(id)) flaggedCopies.set(id, (flaggedCopies.get(id) ?? 0) + 1);
}
const flaggedTally = {
  trials: flagged.length,
  acknowledged: flagged.filter((trial) => trial.reply === 250).length,
  lost: flagged.filter((trial) => trial.reply === 250 && !flaggedCopies.has(trial.id)).length,
  duplicated: [...flaggedCopies.values()].filter((copies) => copies > 1).length,
  notRewritten: sink.delivered.filter((message) => flaggedIds.has(trialIdOf(message) ?? '') && message.includes('TVqQAHNldHVw')).length,
};
const spoolLeft = (await readdir(spoolDir)).length;
console.log(
  JSON.stringify(
    {
      seed,
      minutes: Number(values.minutes),
      faults,
      clean: cleanTally,
      flagged: flaggedTally,
      hostile: { sessions: hostileSessions, answered: hostileAnswered },
      unknownDelivered: sink.delivered.filter((message) => !cleanIds.has(trialIdOf(message) ?? '') && !flaggedIds.has(trialIdOf(message) ?? '')).length,
      spoolFilesLeft: spoolLeft,
      peakRssMb: Math.round(peakRssKb / 1024),
      targets: { lost: 0, corrupted: 0, duplicateAfter250: 0, spoolFilesLeft: 0 },
    },
    null,
    2,
  ),
);
await rm(dir, { recursive: true, force: true });
const failed = cleanTally.lost + cleanTally.corrupted + cleanTally.duplicateAfter250 + flaggedTally.lost + flaggedTally.duplicated + flaggedTally.notRewritten + spoolLeft > 0;
process.exit(failed ? 1 : 0);
