// Issue 16.4 (the process side): over limits.max_process_memory_bytes a new DATA is tempfailed
// with 451 4.3.1 instead of growing the process; nothing goes upstream and the session goes on.
// The budget here is one byte, so every process is over it.
import t from 'tap';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

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
