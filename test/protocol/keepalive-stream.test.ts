// Issue 16.1: the upstream keepalive (NOOP) can never land inside a message being streamed
// upstream. The upstream here reads slowly: it stops reading once it answered DATA, for many
// keepalive intervals, then reads on; it records every byte so the body can be compared.
import t, { type Test } from 'tap';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { RawClient } from '../helpers/client.js';
import { startTestProxy } from '../helpers/proxy.js';

/** Keepalive interval of the proxy under test, and how long the upstream stops reading (many intervals). */
const KEEPALIVE_SECONDS = 0.05;
const STALL_MS = 1500;

interface SlowUpstream {
  port: number;
  /** Everything received after DATA's 354, up to and including the final dot. */
  body: () => Buffer;
  /** Every command line received outside DATA. */
  commands: string[];
}

async function slowUpstream(t: Test): Promise<SlowUpstream> {
  const commands: string[] = [];
  const bodyChunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let pending = Buffer.alloc(0);
    let inData = false;
    let tail = Buffer.alloc(0);
    socket.write('220 slow.test ESMTP\r\n');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      if (inData) {
        bodyChunks.push(chunk);
        tail = Buffer.concat([tail, chunk]).subarray(-5);
        if (tail.equals(Buffer.from('\r\n.\r\n'))) {
          inData = false;
          socket.write('250 2.0.0 Ok: queued\r\n');
        }
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      for (let lf = pending.indexOf('\n'); lf !== -1; lf = pending.indexOf('\n')) {
        const line = pending.subarray(0, lf).toString('latin1').replace(/\r$/, '');
        pending = pending.subarray(lf + 1);
        commands.push(line);
        const verb = line.split(' ')[0]?.toUpperCase();
        if (verb === 'EHLO') socket.write('250-slow.test\r\n250 PIPELINING\r\n');
        else if (verb === 'QUIT') socket.end('221 2.0.0 Bye\r\n');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
          // Reads slowly: nothing more is read for many keepalive intervals.
          socket.pause();
          setTimeout(() => socket.resume(), STALL_MS).unref();
          if (pending.length > 0) bodyChunks.push(pending);
          pending = Buffer.alloc(0);
          return;
        } else socket.write('250 2.0.0 Ok\r\n');
      }
    });
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, body: () => Buffer.concat(bodyChunks), commands };
}

t.test('a slow-reading upstream never receives a keepalive NOOP inside the streamed message', async (t) => {
  const upstream = await slowUpstream(t);
  const proxy = await startTestProxy(t, upstream.port, { timeouts: { upstream_keepalive_seconds: KEEPALIVE_SECONDS } });
  const client = await RawClient.connect(proxy.port);
  await client.waitForReplies(1);
  client.send('EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  t.equal(client.replies[4]?.code, 354);
  // 4 MiB: far more than the socket buffers hold while the upstream does not read.
  const line = `${'x'.repeat(1022)}\r\n`;
  const body = Buffer.from(`Subject: big\r\n\r\n${line.repeat(4096)}`, 'latin1');
  client.send(body);
  client.send('.\r\n');
  await client.waitForReplies(6, 60000);
  t.equal(client.replies[5]?.code, 250, 'the upstream accepted the message');
  const received = upstream.body();
  t.notOk(received.includes('NOOP'), 'no NOOP inside the body');
  t.ok(received.equals(Buffer.concat([body, Buffer.from('.\r\n')])), `the upstream received exactly the ${body.length} bytes sent, then the dot`);
  client.close();
});
