// The admin listener answers only an IP literal, localhost or a configured name in the Host
// header, so a web page that rebinds its own DNS name to this address gets nothing (421).
import t from 'tap';
import { request } from 'node:http';
import { hostAllowed, startAdminServer } from '../../src/observe/admin.js';
import { Metrics } from '../../src/observe/metrics.js';

t.test('Host header rule', async (t) => {
  for (const host of ['127.0.0.1:9925', '127.0.0.1', '[::1]:9925', '10.1.2.3', 'localhost:9925', 'LOCALHOST', 'mailmoat.internal:9925', 'Mailmoat.Internal.'])
    t.ok(hostAllowed(host, ['mailmoat.internal']), `${host} is answered`);
  for (const host of ['attacker.example', 'attacker.example:9925', '127.0.0.1.nip.io', 'localhost.attacker.example', '', '[bogus]:1'])
    t.notOk(hostAllowed(host, ['mailmoat.internal']), `${host} is refused`);
  t.ok(hostAllowed(undefined, []), 'HTTP/1.0 without Host (not a browser)');
});

t.test('a rebinding request is refused over a real socket', async (t) => {
  const server = await startAdminServer({ host: '127.0.0.1', port: 0 }, new Metrics(), async () => ({ ok: true, detail: {} }), ['admin.example']);
  t.teardown(() => server.close());
  const get = (host: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.address.port, path: '/api/status', headers: { host } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  t.equal(await get(`127.0.0.1:${server.address.port}`), 200);
  t.equal(await get(`admin.example:${server.address.port}`), 200);
  t.equal(await get(`rebind.attacker.example:${server.address.port}`), 421);
});
