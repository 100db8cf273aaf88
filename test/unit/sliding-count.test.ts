// The per-address connection window of the admission limits: exact counts at the window's edge,
// the same answers as filtering every time, and a window that empties and counts again after a flood.
import t from 'tap';
import fc from 'fast-check';
import { SlidingCount } from '../../src/accept/sliding-count.js';

t.test('counts the times within the window, dropping those a full window old', async (t) => {
  const window = new SlidingCount(60_000);
  t.equal(window.count(0), 0);
  window.add(0);
  window.add(30_000);
  t.equal(window.count(59_999), 2, 'both inside');
  t.equal(window.count(60_000), 1, 'the first is exactly a window old: out');
  t.equal(window.count(89_999), 1);
  t.ok(window.expired(90_000), 'nothing left');
});

t.test('agrees with filtering every time, for any ordered sequence of arrivals and checks', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 5_000 }), fc.boolean()), { maxLength: 300 }), (steps) => {
      const window = new SlidingCount(1_000);
      const all: number[] = [];
      let now = 0;
      for (const [advance, add] of steps) {
        now += advance;
        const expected = all.filter((time) => now - time < 1_000).length;
        if (window.count(now) !== expected) return false;
        if (add) {
          window.add(now);
          all.push(now);
        }
      }
      return true;
    }),
  );
  t.pass('matches the filter on every step');
});

t.test('after a flood of one address, the window empties a minute after the last connection and counts again', async (t) => {
  const window = new SlidingCount(60_000);
  // 200,000 connections in one minute, then a minute later: the window empties and compacts.
  for (let index = 0; index < 200_000; index++) {
    window.count(index / 4);
    window.add(index / 4);
  }
  t.equal(window.count(50_000), 200_000, 'all 200,000 inside the minute');
  t.equal(window.count(50_000 + 60_000), 0, 'all gone a minute after the last');
  window.add(200_000);
  t.equal(window.count(200_000), 1, 'counting starts again from the compacted window');
});
