// What the upstream says is not trusted: a 421 shutdown notice is relayed and ends the session,
// a malformed reply is a protocol error (421 to the downstream), control characters are masked.
import t from 'tap';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

t.test('an upstream 421 shutdown notice reaches the downstream and closes the session', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { answer: (verb) => (verb === 'NOOP' ? '421 4.3.2 Service shutting down\r\n' : undefined) });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  client.send('NOOP\r\n');
  t.ok(await client.waitForClose());
  t.equal(client.replies[1]?.code, 421);
});

t.test('a malformed upstream reply: 421 4.4.2 to the downstream', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { answer: (verb) => (verb === 'NOOP' ? 'HTTP/1.1 200 OK' : undefined) });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  client.send('NOOP\r\n');
  t.ok(await client.waitForClose());
  t.same(client.codes(), [220, 421]);
  t.match(client.replies[1]?.lines[0], /^4\.4\.2/);
});

t.test('control characters in upstream text are masked', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { answer: (verb) => (verb === 'NOOP' ? '250 ok\x1b[2J\x07done' : undefined) });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  const reply = await client.command('NOOP');
  t.same(reply.lines, ['ok?[2J?done']);
  client.close();
});

t.test('an upstream that greets with 421 is relayed once and the session closes', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { greeting: '421 4.3.2 Too busy, try later' });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.connect(proxy.port);
  t.ok(await client.waitForClose());
  t.same(client.replies, [{ code: 421, lines: ['4.3.2 Too busy, try later'] }]);
});
