// Issue 16.8: replies in order and with the right reason. The 421 after too many unknown verbs
// waits for the replies owed to earlier pipelined commands; a client leaving without QUIT does
// not make the proxy's own QUIT upstream look like an unsolicited reply; a header line of 1 MB
// with no line break gets the documented header-block reply, not "too many header lines".
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

/** Waits until the proxy logged `msg` (polling its in-memory log; false after 10 s). */
async function logged(logs: Record<string, unknown>[], msg: string): Promise<boolean> {
  for (let waited = 0; waited < 10000; waited += 10) {
    if (logs.some((entry) => entry.msg === msg)) return true;
    await sleep(10);
  }
  return false;
}

t.test('the 421 after too many unknown verbs waits its turn behind EHLO and the 500s', async (t) => {
  // EHLO's reply comes from the upstream, so it is still owed when the unknown verbs are read.
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { limits: { max_unknown_commands: 3 } });
  const client = await RawClient.greeted(proxy.port);
  client.send('EHLO c\r\nXYZZY\r\nPLUGH\r\nFROB\r\nNOOP\r\n');
  t.ok(await client.waitForClose(), 'closed');
  t.same(client.codes(), [220, 250, 500, 500, 421], 'every reply owed is sent, in order, then the 421');
  t.match(client.replies[4]?.lines[0], /^4\.7\.0 Too many unrecognized commands/);
  t.notOk(upstream.sessions[0]?.commands.includes('NOOP'), 'nothing after the limit is read');
});

t.test('a client that leaves without QUIT: no "unsolicited reply" warning for the upstream\'s 221', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  t.equal((await client.command('EHLO c')).code, 250);
  client.socket.end();
  // The proxy says QUIT upstream; the upstream's 221 reaches the proxy before its connection closes.
  t.ok(await logged(proxy.logs, 'upstream connection closed'), 'the upstream leg closed');
  t.equal(upstream.sessions[0]?.commands.at(-1), 'QUIT', 'the upstream got QUIT');
  t.same(
    proxy.logs.filter((entry) => entry.level === 40 || entry.msg === 'upstream protocol error'),
    [],
    'no warning',
  );
});

t.test('a 1 MB header line with no line break: the header block reply, not "too many header lines"', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.openTransaction(proxy.port);
  t.equal(client.replies[4]?.code, 354);
  client.send(`X-Long: ${'a'.repeat(1024 * 1024)}\r\n\r\nbody\r\n.\r\n`);
  await client.waitForReplies(6, 30000);
  t.equal(`${client.replies[5]?.code} ${client.replies[5]?.lines[0]}`, '451 4.7.1 Message header block too large (limits.max_mime_header_bytes)');
  t.same(upstream.payloads, []);
  t.equal(proxy.transactions[0]?.verdict, 'tempfail');
  client.close();
});
