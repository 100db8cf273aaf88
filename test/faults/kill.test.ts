// Fault suite: kill -9 of a worker and of the supervisor of a real `mailmoat start` (2 workers)
// at random points of DATA and of forwarding, with ten senders in flight each time. Whatever
// the timing: no message a sender saw 250 for is missing upstream (LOST), none arrives twice,
// none differs by a byte (CORRUPTED), and no spool file is left once mailmoat has stopped.
// The seed is printed; FAULT_SEED=<n> repeats a run.
import t from 'tap';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMailmoat, type Running } from '../helpers/mailmoat-process.js';
import { RecordingSink } from '../../bench/recording-sink.js';
import { seeded, sendTrial, tally, trialMessage, type Trial } from '../../bench/fault-trials.js';
import { isAlive } from '../../src/process-alive.js';

const SENDERS_PER_KILL = 11;
/** Eight worker kills and two supervisor kills, interleaved: 110 trials. */
const SCHEDULE = ['worker', 'worker', 'worker', 'supervisor', 'worker', 'worker', 'worker', 'worker', 'supervisor', 'worker'] as const;
const MESSAGE_BYTES = { min: 4 * 1024, max: 700 * 1024 };
/** The kill lands this long after the senders start: inside DATA, inspection or forwarding. */
const KILL_AFTER_MS = { min: 20, max: 700 };

const workerPids = (running: Running): number[] => running.log().filter((line) => line.msg === 'worker listening').map((line) => Number(line.workerPid));

async function untilGone(pids: readonly number[]): Promise<void> {
  while (pids.some(isAlive)) await sleep(20);
}

// Sized for 2 busy cores: mostly the time mailmoat processes take to start.
t.setTimeout(480_000);

t.test('kill -9 of workers and of the supervisor at random points', async (t) => {
  const seed = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.comment(`seed ${seed}`);
  const random = seeded(seed);
  const between = (range: { min: number; max: number }): number => Math.floor(range.min + random() * (range.max - range.min));
  const sink = await RecordingSink.start();
  t.teardown(() => sink.close());
  // Half the dots are answered after a pause: a window in which a kill lands mid-forwarding.
  sink.behaviour = { dotReplyDelayMs: () => (random() < 0.5 ? 0 : between({ min: 1, max: 300 })) };
  const spoolDir = await mkdtemp(join(tmpdir(), 'mailmoat-fault-spool-'));
  t.teardown(() => rm(spoolDir, { recursive: true, force: true }));
  const extra = `workers: 2\nspool:\n  dir: ${spoolDir}\n  memory_threshold_bytes: 8192\n`;
  let running = await startMailmoat(t, sink.port, extra);
  const trials: Trial[] = [];
  let serial = 0;

  const round = async (kill: () => Promise<void>): Promise<void> => {
    const senders = Array.from({ length: SENDERS_PER_KILL }, () => {
      const id = `t${seed}-${++serial}`;
      return sendTrial(running.port, id, trialMessage(id, between(MESSAGE_BYTES)));
    });
    await sleep(between(KILL_AFTER_MS));
    await kill();
    trials.push(...(await Promise.all(senders)));
  };

  for (const target of SCHEDULE) {
    if (target === 'supervisor') {
      await round(async () => {
        const workers = workerPids(running);
        running.child.kill('SIGKILL');
        await running.exited;
        // Its workers lose their channel and exit; a new start must find the spool as they left it.
        await untilGone(workers);
      });
      running = await startMailmoat(t, sink.port, extra);
      continue;
    }
    // A killed worker's replacement is not awaited: the other one serves, and with none the
    // shared listening socket queues connections until a replacement accepts them.
    while (workerPids(running).filter(isAlive).length === 0) await sleep(25);
    await round(async () => {
      const alive = workerPids(running).filter(isAlive);
      const victim = alive[Math.floor(random() * alive.length)] as number;
      const mark = running.lines();
      process.kill(victim, 'SIGKILL');
      // Until the supervisor has reaped it, the killed worker is a zombie that a signal 0
      // still finds: the next round must not count it among the living.
      await running.logged('worker exited unexpectedly: a replacement is started', mark);
    });
  }

  const workers = workerPids(running);
  running.child.kill('SIGTERM');
  await running.exited;
  await untilGone(workers);
  const result = tally(trials, sink.delivered);
  t.comment(`tally ${JSON.stringify(result)}`);
  t.ok(result.trials >= 100, `${result.trials} trials`);
  t.equal(result.lost, 0, 'LOST: none');
  t.equal(result.corrupted, 0, 'CORRUPTED: none');
  t.equal(result.duplicateAfter250, 0, 'DUPLICATE-AFTER-250: none');
  t.equal(result.duplicatedUnacknowledged, 0, 'never delivered twice');
  t.equal(result.unexpected, 0, 'every reply is 250, 4xx or none (a clean message is never refused)');
  t.same(await readdir(spoolDir), [], 'no spool file left');
});
