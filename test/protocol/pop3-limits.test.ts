// POP3 limits and failures over real sockets: line length, unknown commands, the
// state table, the idle timeout (no UPDATE without QUIT), STLS refused, and an
// upstream that stalls or vanishes in the middle of a RETR (RFC 1939, 2449).
import t, { type Test } from 'tap';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { startTestDovecot } from '../helpers/dovecot.js';
import { startTestPop3Proxy } from '../helpers/proxy.js';
import { RawPop3 } from '../helpers/pop3-raw.js';

const message = Buffer.from('From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nHello\r\n', 'latin1');

t.test('long lines, unknown commands and commands out of state get -ERR; too many unknown commands close', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [message] }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, { limits: { max_command_line_bytes: 100, max_unknown_commands: 3 } });
  const client = await RawPop3.connect(proxy.port);
  t.teardown(() => client.close());
  t.match(await client.line(), /^\+OK/);
  t.equal(await client.command('RETR 1'), '-ERR Command not valid in this state', 'RETR before login');
  t.equal(await client.command('STLS'), '-ERR STLS is not available');
  t.equal(await client.command(`USER ${'a'.repeat(200)}`), '-ERR Line too long');
  t.equal(await client.command('XTND XMIT'), '-ERR Unknown command');
  t.match(await client.command('USER alice'), /^\+OK/, 'the session goes on');
  t.equal(await client.command('NOPE'), '-ERR Too many unrecognized commands, closing connection');
  t.ok(await client.closedWithin(2000), 'closed');
});

t.test('an idle client is logged out, and the upstream never enters UPDATE', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [message] }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, { pop3: { idle_seconds: 1 } });
  const client = await RawPop3.connect(proxy.port);
  t.teardown(() => client.close());
  await client.login('alice', 'secret');
  t.match(await client.command('DELE 1'), /^\+OK/);
  t.equal(await client.line(3000), '-ERR Autologout: idle for too long');
  t.ok(await client.closedWithin(2000));
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(await dovecot.messageCount('alice'), 1, 'DELE without QUIT deleted nothing');
});

/** An upstream that misbehaves on purpose in the middle of RETR: it stalls, or closes. */
async function brokenUpstream(t: Test, behaviour: 'stall' | 'close'): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.write('+OK ready\r\n');
    socket.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('latin1').split('\r\n').filter(Boolean)) {
        if (line.startsWith('RETR')) {
          socket.write('+OK 1000 octets\r\nFrom: a@example.org\r\n\r\nfirst half');
          if (behaviour === 'close') socket.destroy();
        } else socket.write('+OK\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

t.test('an upstream that stalls or vanishes mid-RETR: -ERR [SYS/TEMP], no partial message', async (t) => {
  for (const behaviour of ['stall', 'close'] as const) {
    const upstream = await brokenUpstream(t, behaviour);
    const proxy = await startTestPop3Proxy(t, upstream, { timeouts: { upstream_reply_seconds: 1 } });
    const client = await RawPop3.connect(proxy.port);
    t.teardown(() => client.close());
    await client.login('alice', 'secret');
    const answer = await client.command('RETR 1', 5000);
    t.match(answer, behaviour === 'stall' ? /^-ERR \[SYS\/TEMP\] Upstream server did not answer in time/ : /^-ERR \[SYS\/TEMP\] Upstream connection lost/, behaviour);
    t.ok(await client.closedWithin(2000), `${behaviour}: the session ends`);
    t.notMatch(client.pending.toString('latin1'), /first half/, `${behaviour}: no byte of the partial message reached the client`);
    t.match(proxy.retrievals[0], { verdict: 'aborted' });
  }
});
