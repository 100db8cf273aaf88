// The class of a reply decides, not its exact code (RFC 5321 4.2.1: the first digit tells a client
// whether to "proceed as planned, redo, retrench"). An upstream that answers DATA with another 3yz
// than 354 is going on, and one that answers STARTTLS with another 2yz than 220 has started TLS
// (RFC 3207 4 names 220; Postfix's own smtp client starts TLS on any 2yz): treating either as a
// refusal would leave the upstream waiting for a payload or a handshake the proxy never sends.
// A real server does not give such codes on request, so the upstreams here are scripted; the TLS
// one speaks real TLS with the test PKI's certificate.
import t, { type Test } from 'tap';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { passInspector, startListener, startTestProxy } from '../helpers/proxy.js';
import { createTestPki } from '../../bench/test-pki.js';
import { initCa } from '../../src/tls/ca.js';

const MESSAGE = 'Subject: class\r\n\r\nthe class decides\r\n';

// The PKI is made before any test starts: the root test ends (and tears down) once its queue is empty.
const dir = await mkdtemp(join(tmpdir(), 'mailmoat-reply-classes-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const pki = await createTestPki(join(dir, 'upstream-pki'));
const ca = await initCa(join(dir, 'mailmoat-ca'));
const [upstreamKey, upstreamCert, upstreamCa, ourCa] = await Promise.all([readFile(pki.keyFile), readFile(pki.certFile), readFile(pki.caFile), readFile(ca.certPath)]);

t.test('DATA answered with a 3yz other than 354 is acceptance: the message goes up byte for byte and its 250 is relayed', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { data: () => '352 2.0.0 Go on, end with <CRLF>.<CRLF>' });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.openTransaction(proxy.port);
  t.equal(client.replies[4]?.code, 354, 'the proxy answers DATA itself');
  client.send(`${MESSAGE}.\r\n`);
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 250);
  t.same(upstream.payloads.map((payload) => payload.toString('latin1')), [MESSAGE]);
  t.equal(proxy.transactions[0]?.verdict, 'pass');
  client.close();
});

t.test('a reply of no SMTP class (6yz) to the final dot is not relayed: the generic 451 4.3.0 is', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { final: () => '650 6.0.0 from elsewhere' });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.openTransaction(proxy.port);
  client.send(`${MESSAGE}.\r\n`);
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 451);
  t.match(client.replies[5]?.lines[0], /^4\.3\.0/);
  client.close();
});

/** Answers each command line of `stream` with `answer(verb)`; returns a detach function. */
function serveLines(stream: Duplex, answer: (verb: string) => string | undefined): () => void {
  let pending = '';
  const onData = (chunk: Buffer): void => {
    pending += chunk.toString('latin1');
    for (let end = pending.indexOf('\r\n'); end !== -1; end = pending.indexOf('\r\n')) {
      const verb = pending.slice(0, end).split(' ', 1)[0]?.toUpperCase() ?? '';
      pending = pending.slice(end + 2);
      const reply = answer(verb);
      if (reply !== undefined) stream.write(`${reply}\r\n`);
    }
  };
  stream.on('data', onData);
  return () => stream.off('data', onData);
}

/**
 * An upstream that offers STARTTLS, answers it with `starttlsReply` and then does TLS as a server with
 * the test PKI's leaf; over TLS it answers EHLO with `250 upstream.test over TLS`.
 */
async function startTlsUpstream(t: Test, starttlsReply: string, key: Buffer, cert: Buffer): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.write('220 upstream.test ESMTP scripted\r\n');
    const detach = serveLines(socket, (verb) => {
      switch (verb) {
        case 'EHLO':
          return '250-upstream.test\r\n250-PIPELINING\r\n250 STARTTLS';
        case 'STARTTLS': {
          detach();
          socket.write(`${starttlsReply}\r\n`);
          const secure = new TLSSocket(socket, { isServer: true, key, cert });
          secure.on('error', () => undefined);
          serveLines(secure, (over) => (over === 'EHLO' ? '250 upstream.test over TLS' : over === 'QUIT' ? '221 2.0.0 Bye' : '502 5.5.2 not here'));
          return undefined;
        }
        case 'QUIT':
          return '221 2.0.0 Bye';
        default:
          return '502 5.5.2 not here';
      }
    });
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

const STARTTLS_2YZ = '250 2.0.0 Go ahead with TLS';

async function plainSession(t: Test, port: number): Promise<RawClient> {
  const client = await RawClient.greeted(port);
  t.teardown(() => client.close());
  t.equal(client.replies[0]?.code, 220, 'greeted');
  t.ok((await client.command('EHLO c')).lines.includes('STARTTLS'), 'STARTTLS offered');
  return client;
}

/** TLS over the client's connection; the plain client reads nothing more (TLS owns the socket). */
async function overTls(socket: Socket, ca: Buffer): Promise<RawClient> {
  const secure = tlsConnect({ socket, ca, servername: 'localhost', checkServerIdentity: () => undefined });
  secure.on('error', () => undefined);
  await once(secure, 'secureConnect');
  return RawClient.over(secure);
}

t.test('passthrough: STARTTLS answered with a 2yz other than 220 is acceptance: relayed as it is, then the legs are spliced', async (t) => {
  const port = await startTlsUpstream(t, STARTTLS_2YZ, upstreamKey, upstreamCert);
  const proxy = await startListener(t, 'smtp', `127.0.0.1:${port}`, {}, passInspector, { starttls: 'passthrough' });
  const client = await plainSession(t, proxy.port);
  t.same(await client.command('STARTTLS'), { code: 250, lines: ['2.0.0 Go ahead with TLS'] }, "the upstream's own 2yz");
  const secure = await overTls(client.socket, upstreamCa);
  t.same((await secure.command('EHLO c')).lines, ['upstream.test over TLS'], 'TLS with the upstream itself, through the splice');
  t.equal(proxy.passthroughs(), 1);
});

t.test('intercept: STARTTLS answered upstream with a 2yz other than 220 is acceptance: both legs are upgraded', async (t) => {
  const port = await startTlsUpstream(t, STARTTLS_2YZ, upstreamKey, upstreamCert);
  const tls = { ca_cert: ca.certPath, ca_key: ca.keyPath, upstream_ca: pki.caFile };
  const proxy = await startListener(t, 'smtp', `127.0.0.1:${port}`, { tls }, passInspector, { starttls: 'intercept' });
  const client = await plainSession(t, proxy.port);
  t.equal((await client.command('STARTTLS')).code, 220, "the proxy's own 220, not 454");
  const secure = await overTls(client.socket, ourCa);
  t.same((await secure.command('EHLO c')).lines, ['upstream.test over TLS'], 'relayed over the upstream TLS leg');
});
