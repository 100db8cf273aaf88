// Abuse protection over real sockets: concurrent sessions per address, new connections
// per address per minute, many slow connections while a normal client gets through,
// header lines (SMTP 554 5.6.0; POP3 delivered with a warning), and the minimum data
// rate inside DATA (slowloris).
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { SmtpSink } from '../helpers/smtp-sink.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { startTestPop3Proxy, startTestProxy } from '../helpers/proxy.js';
import { RawClient } from '../helpers/client.js';
import { RawPop3 } from '../helpers/pop3-raw.js';

/** A connection from a chosen loopback source address (127.0.0.0/8 is all ours on Linux). */
async function connectFrom(port: number, localAddress: string): Promise<{ socket: Socket; first: Promise<string> }> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const first = new Promise<string>((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1')));
    socket.once('close', () => resolve(''));
  });
  return { socket, first };
}

const headers = (count: number): string => Array.from({ length: count }, (_, index) => `X-Line-${index}: value`).join('\r\n');

t.test('sessions per address: the next one from that address gets 421 4.7.0, another address is served', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port, { limits: { max_sessions_per_address: 3 } });
  const held = await Promise.all([1, 2, 3].map(() => connectFrom(proxy.port, '127.0.0.1')));
  t.teardown(() => held.forEach(({ socket }) => socket.destroy()));
  for (const { first } of held) t.match(await first, /^220 /);
  const fourth = await connectFrom(proxy.port, '127.0.0.1');
  t.equal(await fourth.first, '421 4.7.0 Too many connections, try again later\r\n');
  const other = await connectFrom(proxy.port, '127.0.0.2');
  t.match(await other.first, /^220 /, 'another address is not affected');
  other.socket.destroy();
  t.ok(proxy.logs.some((line) => line.msg === 'connection refused by a limit' && line.limit === 'max_sessions_per_address'));
});

t.test('new connections per address per minute', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port, { limits: { max_connections_per_address_per_minute: 4 } });
  const answers: string[] = [];
  for (let index = 0; index < 6; index++) {
    const connection = await connectFrom(proxy.port, '127.0.0.4');
    answers.push((await connection.first).slice(0, 3));
    connection.socket.destroy();
  }
  t.same(answers, ['220', '220', '220', '220', '421', '421']);
});

t.test('fifty slow connections do not starve a normal client', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port, { limits: { max_sessions_per_address: 20 } });
  const slow = await Promise.all(Array.from({ length: 50 }, () => connectFrom(proxy.port, '127.0.0.5')));
  t.teardown(() => slow.forEach(({ socket }) => socket.destroy()));
  const firsts = await Promise.all(slow.map(({ first }) => first));
  t.equal(firsts.filter((answer) => answer.startsWith('421')).length, 30, 'beyond 20 from one address: 421');
  // Each admitted slow client says half a command and stalls.
  const admitted = slow.filter((_, index) => firsts[index]?.startsWith('220'));
  let closedByProxy = 0;
  for (const { socket } of admitted) {
    socket.once('close', () => closedByProxy++);
    socket.write('EHL');
  }
  const client = await RawClient.greeted(proxy.port);
  client.send('EHLO normal\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n');
  await client.waitForClose();
  t.same(client.codes(), [220, 250, 250, 250, 354, 250, 221]);
  // Not starved: served while all twenty stalled sessions are still open (none had to time out first).
  t.equal(closedByProxy, 0, 'the twenty stalled sessions are all still open');
});

t.test('header lines: 151 is refused with 554 5.6.0 by SMTP, 150 passes', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port);
  for (const [count, expected] of [[150, 250], [151, 554]] as const) {
    const client = await RawClient.openTransaction(proxy.port);
    client.send(`${headers(count)}\r\n\r\nbody\r\n.\r\n`);
    const replies = await client.waitForReplies(6);
    t.equal(replies[5]?.code, expected, `${count} header lines: ${expected}`);
    client.close();
  }
  t.match(proxy.transactions.at(-1), { verdict: 'refused', reason: 'more than 150 header lines (limits.max_header_lines)' });
});

t.test('header lines over POP3: delivered with a warning header and a matching octet count', async (t) => {
  const message = Buffer.from(`${headers(151)}\r\n\r\nbody\r\n`, 'latin1');
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [message] }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port);
  const client = await RawPop3.connect(proxy.port);
  t.teardown(() => client.close());
  await client.login('alice', 'secret');
  client.send('RETR 1\r\n');
  const wire = (await client.multiline()).toString('latin1');
  const status = /^\+OK (\d+) octets\r\n/.exec(wire);
  const body = wire.slice(wire.indexOf('\r\n') + 2, -3);
  t.ok(status, 'an octet count');
  t.equal(Number(status?.[1]), body.length, 'that counts the warning too');
  t.match(body, /^X-Mailmoat-Warning: more than 150 header lines \(limits\.max_header_lines\)\r\nX-Line-0: value/);
});

t.test('slowloris inside DATA: under limits.min_data_bytes_per_second the sender is cut off', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port, { limits: { min_data_bytes_per_second: 10 } });
  const client = await RawClient.openTransaction(proxy.port);
  t.teardown(() => client.close());
  const drip = setInterval(() => client.send('x'), 1000);
  t.teardown(() => clearInterval(drip));
  t.ok(await client.waitForClose(70_000), 'cut off');
  clearInterval(drip);
  t.same(client.replies.at(-1), { code: 421, lines: ['4.4.2 Data arriving too slowly, closing connection'] });
  t.equal((await sink.messages(0, 300)).length, 0, 'nothing delivered');
});
