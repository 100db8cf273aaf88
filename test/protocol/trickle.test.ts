// Issue 16.5: a deadline a trickle cannot extend. A command line sent one byte at a time must
// be complete within timeouts.command_seconds (POP3: pop3.idle_seconds) of the moment the proxy
// began waiting for it; every byte does not start the clock again. The deadline here is short
// (0.4 s) and the trickled line takes 60 bytes x 100 ms = 6 s, so the line can only be finished
// if the deadline is extended: the test asserts the documented reply and that the line never
// reached the upstream, not how long anything took.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { startTestPop3Proxy, startTestProxy } from '../helpers/proxy.js';
import { RawPop3 } from '../helpers/pop3-raw.js';

const DEADLINE_SECONDS = 0.4;
const BYTE_INTERVAL_MS = 100;
const TRICKLED_LINE = `NOOP ${'z'.repeat(53)}\r\n`;

/** Sends the line one byte per interval until the peer closes; returns how many bytes went out. */
async function trickle(send: (byte: string) => void, closed: () => boolean): Promise<number> {
  let sent = 0;
  while (sent < TRICKLED_LINE.length && !closed()) {
    send(TRICKLED_LINE.charAt(sent));
    sent++;
    await sleep(BYTE_INTERVAL_MS);
  }
  return sent;
}

t.test('SMTP: a command line trickled byte by byte is cut off at timeouts.command_seconds', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { timeouts: { command_seconds: DEADLINE_SECONDS } });
  const client = await RawClient.greeted(proxy.port);
  t.equal((await client.command('EHLO c')).code, 250);
  const sent = await trickle((byte) => client.send(byte), () => client.closed);
  t.ok(await client.waitForClose(), 'the proxy closed the session');
  t.ok(sent < TRICKLED_LINE.length, `closed after ${sent} of ${TRICKLED_LINE.length} bytes`);
  t.equal(`${client.replies[2]?.code} ${client.replies[2]?.lines[0]}`, '421 4.4.2 Idle timeout, closing connection');
  t.notOk(upstream.sessions[0]?.commands.some((line) => line.startsWith('NOOP')), 'the trickled command never reached the upstream');
});

t.test('POP3: a command line trickled byte by byte is cut off at pop3.idle_seconds', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [] }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, { pop3: { idle_seconds: DEADLINE_SECONDS } });
  const client = await RawPop3.connect(proxy.port);
  t.teardown(() => client.close());
  t.match(await client.line(), /^\+OK/);
  const sent = await trickle((byte) => client.send(byte), () => client.closed);
  t.ok(sent < TRICKLED_LINE.length, `closed after ${sent} of ${TRICKLED_LINE.length} bytes`);
  t.equal(await client.line(), '-ERR Autologout: idle for too long');
  const closed = await client.closedWithin(10000);
  t.ok(closed, 'the proxy closed the session');
});
