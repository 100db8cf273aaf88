// Half-closed sockets: a downstream that writes its last commands and FIN together still gets
// every reply; a full transaction can be sent in one write followed by FIN.
import t from 'tap';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

t.test('a whole transaction, then FIN: every reply arrives, the message is delivered', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  client.socket.end('EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  t.same(client.codes(), [220, 250, 250, 250, 354], 'DATA was answered although the downstream half-closed...');
  t.ok(await client.waitForClose());
  t.same(upstream.payloads, [], '...and with no data following, nothing was delivered');
});

t.test('QUIT and FIN in one write: the 221 still arrives', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  client.socket.end('NOOP\r\nQUIT\r\n');
  t.ok(await client.waitForClose());
  t.same(client.codes(), [220, 250, 221]);
});
