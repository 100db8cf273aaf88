// What both sessions do after a positive STARTTLS / STLS answer (tls/starttls.ts), on a
// loopback socket pair per leg: passthrough drops what was sent behind the command, lets the
// session go of both sockets before anything else, then joins the legs byte for byte.
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observe/log.js';
import { startPassthrough } from '../../src/tls/starttls.js';

/** A connected pair: [the peer's end, our end]. */
async function socketPair(t: Test): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const peer = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [ours] = await accepted;
  await once(peer, 'connect');
  server.close();
  t.teardown(() => {
    peer.destroy();
    ours.destroy();
  });
  return [peer, ours];
}

function logSink(): { log: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('debug', sink), lines };
}

/** Waits until `socket` has `bytes` readable bytes buffered (it is paused, as a session's socket is). */
async function buffered(socket: Socket, bytes: number): Promise<void> {
  while (socket.readableLength < bytes) await once(socket, 'readable');
}

t.test('passthrough: injected plaintext dropped and logged, release first, then the legs are joined', async (t) => {
  const [client, downstream] = await socketPair(t);
  const [server, upstream] = await socketPair(t);
  downstream.pause();
  upstream.pause();
  client.write('EHLO injected\r\n');
  await buffered(downstream, 'EHLO injected\r\n'.length);
  const { log, lines } = logSink();
  const order: string[] = [];
  startPassthrough(
    { command: 'STARTTLS', downstream, downstreamUnread: 4, log, upstream, upstreamLabel: 'upstream:25', idleSeconds: 60 },
    { release: () => order.push('release'), onPassthrough: () => order.push('passthrough'), onClose: () => order.push('close') },
  );
  t.same(order, ['release', 'passthrough']);
  t.match(lines[0], { level: 40, bytes: 4 + 'EHLO injected\r\n'.length, msg: 'discarded plaintext sent behind STARTTLS (CVE-2011-0411)' });
  t.match(lines[1], { level: 30, upstream: 'upstream:25', msg: 'STARTTLS passed through: the rest of this session is not inspected' });
  client.write('client hello');
  const [toServer] = (await once(server, 'data')) as [Buffer];
  t.equal(toServer.toString('latin1'), 'client hello', 'what the downstream sends after the answer reaches the upstream untouched');
  server.write('server hello');
  const [toClient] = (await once(client, 'data')) as [Buffer];
  t.equal(toClient.toString('latin1'), 'server hello');
  client.destroy();
  await once(downstream, 'close');
  t.same(order, ['release', 'passthrough', 'close'], 'onClose when the downstream is gone');
});
