// How the upstream leg ends when the downstream goes (src/session/smtp/closing.ts): QUIT is said
// once. A downstream whose QUIT was relayed and that resets its connection before the upstream's
// 221 leaves the upstream with one QUIT and a FIN, not a second QUIT behind the first.
import t from 'tap';
import { once } from 'node:events';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

t.test('a downstream that resets while its QUIT awaits the 221: the upstream gets one QUIT, then FIN', async (t) => {
  let quitReached: () => void = () => undefined;
  const quitSeen = new Promise<void>((resolve) => (quitReached = resolve));
  const upstream = await ScriptedUpstream.start(t, {
    answer: (verb) => {
      if (verb !== 'QUIT') return undefined;
      quitReached();
      return 'stall';
    },
  });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  t.equal((await client.command('EHLO c')).code, 250);
  client.send('QUIT\r\n');
  await quitSeen;
  const closed = once(client.socket, 'close');
  // A reset, so the proxy sees the connection gone (a FIN alone leaves it half-open, owed the 221).
  client.socket.resetAndDestroy();
  await closed;
  while (upstream.sessions[0]?.closed !== true) await new Promise<void>((resolve) => setImmediate(resolve));
  const raw = upstream.sessions[0]?.raw.toString('latin1') ?? '';
  t.equal(raw.split('QUIT\r\n').length - 1, 1, 'one QUIT');
});
