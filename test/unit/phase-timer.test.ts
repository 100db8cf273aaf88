// The phase timer: one typed deadline per slot; a replaced or cleared deadline never fires,
// and the handler learns which deadline passed. Ordering comes from the timers themselves
// (a later deadline fires after an earlier one), not from sleeps.
import t from 'tap';
import { PhaseTimer } from '../../src/session/timers.js';

type Kind = 'command' | 'data';

// The timers are unref'd (a session's deadline never keeps the process up): this one keeps the test's process alive.
const keepAlive = setInterval(() => undefined, 60_000);
t.teardown(() => clearInterval(keepAlive));

function timerWithLog(): { timer: PhaseTimer<Kind>; fired: Kind[]; next: () => Promise<Kind> } {
  const fired: Kind[] = [];
  let wake: ((kind: Kind) => void) | undefined;
  const timer = new PhaseTimer<Kind>((kind) => {
    fired.push(kind);
    wake?.(kind);
  });
  return { timer, fired, next: () => new Promise((resolve) => (wake = resolve)) };
}

t.test('the armed deadline fires once, with its kind, and the slot is empty after', async (t) => {
  const { timer, fired, next } = timerWithLog();
  timer.set('data', 0.01);
  t.equal(timer.kind, 'data');
  t.equal(await next(), 'data');
  t.equal(timer.kind, undefined);
  t.same(fired, ['data']);
});

t.test('a replaced deadline never fires: one slot', async (t) => {
  const { timer, fired, next } = timerWithLog();
  timer.set('command', 0.01);
  timer.set('data', 0.03);
  t.equal(await next(), 'data');
  t.same(fired, ['data'], 'the command deadline was replaced, not added');
});

t.test('a cleared deadline never fires', async (t) => {
  const { timer, fired } = timerWithLog();
  timer.set('command', 0.01);
  timer.clear();
  const witness = timerWithLog();
  witness.timer.set('data', 0.03);
  await witness.next();
  t.same(fired, [], 'nothing fired');
  t.equal(timer.kind, undefined);
});

t.test('setting the same deadline again restarts it', async (t) => {
  const { timer, fired, next } = timerWithLog();
  timer.set('command', 0.05);
  const witness = timerWithLog();
  witness.timer.set('data', 0.03);
  await witness.next();
  timer.set('command', 0.05);
  t.same(fired, [], 'restarted before it passed');
  t.equal(await next(), 'command');
});
