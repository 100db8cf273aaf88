// The stuffed writer owns its connection from a payload's opening line to its final dot: a
// command throws and a keepalive is skipped meanwhile; afterwards both go through again.
import t from 'tap';
import { PassThrough, Writable } from 'node:stream';
import { StuffedWriter } from '../../src/wire/stuffed-writer.js';

function sink(): { stream: PassThrough; bytes: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, bytes: () => Buffer.concat(chunks).toString('latin1') };
}

/** A source that hands out one chunk, then waits until released (a spool read in progress). */
function gatedSource(chunks: string[]): { source: { open(): AsyncGenerator<Buffer> }; release: () => void } {
  let release = (): void => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    release,
    source: {
      async *open() {
        for (const [index, chunk] of chunks.entries()) {
          if (index === 1) await gate;
          yield Buffer.from(chunk, 'latin1');
        }
      },
    },
  };
}

t.test('nothing else is written between the opening and the final dot', async (t) => {
  const { stream, bytes } = sink();
  const writer = new StuffedWriter(stream);
  t.equal(writer.keepalive(Buffer.from('NOOP\r\n')), true, 'a keepalive between payloads is written');
  const { source, release } = gatedSource(['Subject: x\r\n\r\n', '.dot line\r\n']);
  const lease = writer.begin([Buffer.from('DATA\r\n')]);
  const sending = lease.send(source);
  t.equal(writer.streaming, true);
  t.throws(() => writer.write(Buffer.from('RSET\r\n')), /a payload owns this connection/, 'a command while the payload streams is a bug');
  t.equal(writer.keepalive(Buffer.from('NOOP\r\n')), false, 'a keepalive is skipped');
  t.throws(() => writer.begin([]), /a payload owns this connection/, 'one payload at a time');
  release();
  await sending;
  t.equal(writer.streaming, false, 'the lease ended with the dot');
  t.equal(writer.write(Buffer.from('QUIT\r\n')), true);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(bytes(), 'NOOP\r\nDATA\r\nSubject: x\r\n\r\n..dot line\r\n.\r\nQUIT\r\n', 're-stuffed, terminated, nothing interleaved');
});

t.test('a released lease frees the writer; a failed source frees it too', async (t) => {
  const { stream } = sink();
  const writer = new StuffedWriter(stream);
  writer.begin([Buffer.from('DATA\r\n')]).release();
  t.equal(writer.streaming, false);
  const failing = {
    async *open(): AsyncGenerator<Buffer> {
      yield Buffer.from('a\r\n');
      throw new Error('spool read failed');
    },
  };
  await t.rejects(writer.begin([]).send(failing), /spool read failed/);
  t.equal(writer.streaming, false);
});

t.test('the final write hook can stop the dot', async (t) => {
  const { stream, bytes } = sink();
  const writer = new StuffedWriter(stream);
  const source = {
    async *open(): AsyncGenerator<Buffer> {
      yield Buffer.from('body\r\n');
    },
  };
  await t.rejects(
    writer.begin([]).send(source, () => {
      throw new Error('upstream lost');
    }),
    /upstream lost/,
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.notMatch(bytes(), /\.\r\n$/, 'no final dot');
  t.equal(writer.streaming, false);
});

t.test('a relayed payload (POP3 uninspected RETR) owns the connection until its dot', async (t) => {
  const { stream, bytes } = sink();
  const writer = new StuffedWriter(stream);
  let next = (): void => undefined;
  const relaying = writer.begin([Buffer.from('+OK 20 octets\r\n')]).relay(async (write) => {
    await write([Buffer.from('Subject: x\r\n\r\n', 'latin1')]);
    // The upstream has not sent the rest yet: the keepalive's timer may fire now.
    await new Promise<void>((resolve) => (next = resolve));
    await write([Buffer.from('.dot line\r\n', 'latin1'), Buffer.from('end\r\n', 'latin1')]);
  });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(writer.streaming, true);
  t.equal(writer.keepalive(Buffer.from('X-Mailmoat-Scan: still inspecting, 30 s\r\n')), false, 'the trace header is refused inside the message');
  t.throws(() => writer.write(Buffer.from('-ERR\r\n')), /a payload owns this connection/, 'so is a status line');
  t.equal(bytes(), '+OK 20 octets\r\nSubject: x\r\n\r\n', 'the first piece went out before the rest arrived');
  next();
  await relaying;
  t.equal(writer.streaming, false, 'the lease ended with the dot');
  t.equal(bytes(), '+OK 20 octets\r\nSubject: x\r\n\r\n..dot line\r\nend\r\n.\r\n', 're-stuffed, terminated, nothing interleaved');
});

t.test('a relay whose source fails frees the writer and sends no dot', async (t) => {
  const { stream, bytes } = sink();
  const writer = new StuffedWriter(stream);
  await t.rejects(
    writer.begin([Buffer.from('+OK\r\n')]).relay(async (write) => {
      await write([Buffer.from('partial\r\n')]);
      throw new Error('upstream lost during a multi-line response');
    }),
    /upstream lost/,
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(writer.streaming, false);
  t.equal(bytes(), '+OK\r\npartial\r\n', 'no final dot: the client sees an incomplete response');
});

t.test('a relay waits for drain when the peer does not read', async (t) => {
  const stream = new PassThrough({ highWaterMark: 16 });
  const writer = new StuffedWriter(stream);
  let secondWritten = false;
  const relaying = writer.begin([]).relay(async (write) => {
    await write([Buffer.alloc(64, 0x61)]);
    secondWritten = true;
    await write([Buffer.from('\r\n')]);
  });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(secondWritten, false, 'held until the peer reads');
  stream.resume();
  await relaying;
  t.equal(secondWritten, true);
});

t.test('the opening goes out as one write (a status line and its CRLF are one writev)', async (t) => {
  const writes: number[] = [];
  const stream = new Writable({
    writev(chunks, done) {
      writes.push(chunks.length);
      done();
    },
    write(_chunk, _encoding, done) {
      writes.push(1);
      done();
    },
  });
  const writer = new StuffedWriter(stream);
  writer.begin([Buffer.from('+OK 20 octets'), Buffer.from('\r\n')]).release();
  await new Promise((resolve) => setImmediate(resolve));
  t.same(writes, [2], 'one writev carrying both pieces');
});
