// Backpressure: writeAll never returns before 'drain' once write() said false, and a stream that
// closes while we wait rejects instead of hanging.
import t from 'tap';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeAll } from '../../src/wire/socket-write.js';

function slowSink(): { stream: Writable; release: () => void; written: Buffer[] } {
  const written: Buffer[] = [];
  let pending: (() => void)[] = [];
  const stream = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk);
      pending.push(callback);
    },
  });
  return {
    stream,
    written,
    release: () => {
      const callbacks = pending;
      pending = [];
      callbacks.forEach((callback) => callback());
    },
  };
}

t.test('waits for drain after write() returned false', async (t) => {
  const { stream, release } = slowSink();
  let done = false;
  const writing = writeAll(stream, [Buffer.alloc(64, 1)]).then(() => (done = true));
  await sleep(20);
  t.equal(done, false, 'still waiting: the sink has not drained');
  release();
  await sleep(5);
  release();
  await writing;
  t.equal(done, true);
});

t.test('a stream that closes while we wait rejects', async (t) => {
  const { stream } = slowSink();
  const writing = writeAll(stream, [Buffer.alloc(64, 1)]);
  stream.destroy();
  await t.rejects(writing, /closed/);
  await t.rejects(writeAll(stream, [Buffer.from('x')]), /not writable/);
});
