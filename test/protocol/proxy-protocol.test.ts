// A listener with `proxy_protocol: true`, through the real inspector into a real smtp-sink:
// the client a v1 or v2 header names decides direction (an external one is inspected and
// its executable stripped, an internal one is relayed untouched), per-address limits count
// clients, not the load balancer, the logs name the client, and a connection without a
// header is refused with 421 before anything reaches the upstream; a POP3 listener behind
// the balancer against a real Dovecot.
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { demoSamples, windowsProgramStub } from '../../src/demo/samples.js';
import { SmtpSink, asDumped } from '../helpers/smtp-sink.js';
import { passInspector, startListener } from '../helpers/proxy.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { RawPop3 } from '../helpers/pop3-raw.js';
import { RawClient } from '../helpers/client.js';

const v1 = (source: string, port = 40000): Buffer => Buffer.from(`PROXY TCP4 ${source} 192.0.2.25 ${port} 25\r\n`);

function v2(source: string, port = 40000): Buffer {
  const header = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(header, 0);
  header[12] = 0x21; // version 2, PROXY
  header[13] = 0x11; // AF_INET, STREAM
  header.writeUInt16BE(12, 14);
  Buffer.from(source.split('.').map(Number)).copy(header, 16);
  Buffer.from([192, 0, 2, 25]).copy(header, 20);
  header.writeUInt16BE(port, 24);
  header.writeUInt16BE(25, 26);
  return header;
}

const samples = demoSamples();
const executable = samples.find((sample) => sample.title.startsWith('invoice.pdf.exe'));
if (executable === undefined) throw new Error('demo samples changed');

/** Connects, sends `header`, then a whole transaction with `wire` as its DATA; the replies. */
async function send(port: number, header: Buffer, wire: Buffer): Promise<number[]> {
  const client = await RawClient.connect(port);
  client.send(header);
  await client.waitForReplies(1);
  client.send('EHLO lb.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  client.send(wire);
  await client.waitForReplies(6);
  const replies = (await client.command('QUIT')).code;
  client.close();
  return [...client.codes().slice(0, 6), replies];
}

async function proxyWithInspector(t: Test, sinkPort: number, limits: Record<string, number> = {}) {
  const inspector = await createMailInspector(parsePolicyText('', 'test'));
  return startListener(t, 'smtp', `127.0.0.1:${sinkPort}`, { networks: { internal: ['10.0.0.0/8'] }, limits }, inspector, { proxy_protocol: true });
}

for (const [version, header] of [['v1', v1], ['v2', v2]] as const) {
  t.test(`PROXY ${version}: the client in the header decides direction`, async (t) => {
    const sink = await SmtpSink.start(t);
    const proxy = await proxyWithInspector(t, sink.port);

    t.same(await send(proxy.port, header('203.0.113.7'), executable.wire), [220, 250, 250, 250, 354, 250, 221], 'an external client: accepted');
    t.same(await send(proxy.port, header('10.1.2.3'), executable.wire), [220, 250, 250, 250, 354, 250, 221], 'an internal client: accepted');
    const [first, second] = proxy.transactions;
    t.match(first, { downstream: '203.0.113.7:40000', direction: 'inbound', inspected: true, verdict: 'rewrite' }, 'external: inbound, inspected, rewritten');
    t.match(second, { downstream: '10.1.2.3:40000', direction: 'outbound', inspected: false, verdict: 'pass' }, 'internal: outbound, relayed as it is');

    const received = await sink.messages(2);
    const program = windowsProgramStub().toString('base64').slice(0, 40);
    const stripped = received.filter((message) => !message.body.includes(program) && message.body.includes('invoice.pdf.exe'));
    const untouched = received.filter((message) => message.body === `${asDumped(executable.content)}\n`);
    t.equal(stripped.length, 1, 'one copy arrived without the program');
    t.equal(untouched.length, 1, 'the internal one arrived byte for byte');
    t.ok(proxy.logs.some((line) => line.downstream === '203.0.113.7:40000'), 'the logs name the client, not the load balancer');
    t.notOk(proxy.logs.some((line) => typeof line.downstream === 'string' && line.downstream.startsWith('127.0.0.1:')), 'the load balancer address is not logged as the client');
  });
}

t.test('a connection without a PROXY header is refused with 421, and nothing reaches the upstream', async (t) => {
  t.setTimeout(20_000);
  const sink = await SmtpSink.start(t);
  const proxy = await proxyWithInspector(t, sink.port);
  const direct = await RawClient.connect(proxy.port);
  direct.send('EHLO client.example\r\n');
  const [reply] = await direct.waitForReplies(1);
  t.equal(reply?.code, 421, 'an SMTP command where the header should be: 421');
  t.match(reply?.lines.join(' ') ?? '', /4\.7\.0 .*PROXY protocol/, 'saying why');
  t.ok(await direct.waitForClose(), 'and the connection is closed');
  t.ok(proxy.logs.some((line) => line.msg === 'connection refused: no valid PROXY protocol header' && line.reason === 'missing'), 'logged with its reason');

  const silent = await proxyWithInspector(t, sink.port);
  const socket: Socket = connect({ host: '127.0.0.1', port: silent.port });
  socket.on('error', () => undefined);
  socket.resume();
  await once(socket, 'connect');
  socket.write(Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.25 40000 25\r')); // never finished
  const closed = once(socket, 'close');
  socket.end();
  await closed;
  t.ok(silent.logs.some((line) => line.msg === 'connection refused: no valid PROXY protocol header' && line.reason === 'closed'), 'a header cut off: refused as closed');
  t.equal(proxy.transactions.length + silent.transactions.length, 0, 'no transaction');
  t.equal((await sink.messages(0, 300)).length, 0, 'nothing reached the upstream');
});

t.test('a LOCAL header (a load balancer health check) is served as the connection itself', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await proxyWithInspector(t, sink.port);
  const local = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');
  const client = await RawClient.connect(proxy.port);
  client.send(local);
  const [greeting] = await client.waitForReplies(1);
  t.equal(greeting?.code, 220, 'greeted');
  t.equal((await client.command('QUIT')).code, 221);
  client.close();
});

t.test('per-address limits count the clients the headers name, not the load balancer', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await proxyWithInspector(t, sink.port, { max_sessions_per_address: 2 });
  const open = async (source: string): Promise<RawClient> => {
    const client = await RawClient.connect(proxy.port);
    client.send(v2(source));
    await client.waitForReplies(1);
    return client;
  };
  const held = [await open('203.0.113.7'), await open('203.0.113.7')];
  t.teardown(() => held.forEach((client) => client.close()));
  t.same(held.map((client) => client.replies[0]?.code), [220, 220], 'two sessions from 203.0.113.7');
  const third = await open('203.0.113.7');
  t.equal(third.replies[0]?.code, 421, 'the third from the same client: 421');
  third.close();
  const other = await open('198.51.100.9');
  t.equal(other.replies[0]?.code, 220, 'another client through the same load balancer is served');
  other.close();
  t.ok(proxy.logs.some((line) => line.msg === 'connection refused by a limit' && line.downstream === '203.0.113.7:40000'), 'the refusal names the client');
});

t.test('a POP3 listener behind the balancer: the header and the first command in one write, against a real Dovecot', async (t) => {
  const message = Buffer.from('From: a@example.org\r\nSubject: hello\r\n\r\nbody\r\n', 'latin1');
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [message] }]);
  const proxy = await startListener(t, 'pop3', `127.0.0.1:${dovecot.port}`, {}, passInspector, { proxy_protocol: true });
  const client = await RawPop3.connect(proxy.port);
  t.teardown(() => client.close());
  client.send(Buffer.concat([v2('203.0.113.7'), Buffer.from('CAPA\r\n')]));
  t.match(await client.line(), /^\+OK/, 'the greeting');
  t.match((await client.multiline()).toString('latin1'), /^\+OK/, 'CAPA, sent behind the header in the same write, is answered');
  t.match(await client.command('USER alice'), /^\+OK/);
  t.match(await client.command('PASS secret'), /^\+OK/);
  client.send('RETR 1\r\n');
  t.match((await client.multiline()).toString('latin1'), /Subject: hello/, 'RETR through the proxy');
  t.match(await client.command('QUIT'), /^\+OK/);
  t.ok(proxy.logs.some((line) => line.downstream === '203.0.113.7:40000'), 'the logs name the client');
});
