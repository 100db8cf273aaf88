// Issue 16.4 (the process side): over limits.max_process_memory_bytes a new DATA is tempfailed
// with 451 4.3.1 (POP3: a RETR to inspect gets -ERR [SYS/TEMP]) instead of growing the process;
// nothing goes upstream and the session goes on.
// The budget here is one byte, so every process is over it.
import t from 'tap';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestPop3Proxy, startTestProxy } from '../helpers/proxy.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { RawPop3 } from '../helpers/pop3-raw.js';

t.test('over the process memory budget, DATA gets 451 4.3.1 and nothing reaches the upstream', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { limits: { max_process_memory_bytes: 1 } });
  const client = await RawClient.openTransaction(proxy.port);
  t.equal(`${client.replies[4]?.code} ${client.replies[4]?.lines[0]}`, '451 4.3.1 Insufficient system resources, try again later');
  t.equal((await client.command('RSET')).code, 250, 'the session goes on');
  t.notOk(upstream.sessions[0]?.commands.includes('DATA'), 'no DATA upstream');
  t.same(upstream.payloads, []);
  client.close();
});

t.test('under the budget (the default), DATA is answered 354', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.openTransaction(proxy.port);
  t.equal(client.replies[4]?.code, 354);
  client.close();
});

t.test('POP3: over the budget, a RETR to inspect gets -ERR [SYS/TEMP] and the message stays on the server', async (t) => {
  const message = Buffer.from('From: a@example.org\r\nSubject: hi\r\n\r\nHello\r\n', 'latin1');
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [message] }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, { limits: { max_process_memory_bytes: 1 } });
  const client = await RawPop3.connect(proxy.port);
  t.teardown(() => client.close());
  await client.login('alice', 'secret');
  t.equal(await client.command('RETR 1'), '-ERR [SYS/TEMP] mailmoat could not inspect message 1 (the proxy is short of memory); it stays on the server, try again later');
  t.match(await client.command('STAT'), /^\+OK 1 /, 'the session goes on, the message is still there');
});
