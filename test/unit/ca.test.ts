// mailmoat's CA (RFC 5280 profile) and the leaf certificates it issues, checked
// with Node's own X.509 parser and a real TLS handshake that verifies the chain.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { createServer, type AddressInfo } from 'node:net';
import { initCa, LeafIssuer } from '../../src/tls/ca.js';
import { acceptTls, upstreamContext } from '../../src/tls/upgrade.js';

const dir = await mkdtemp(join(tmpdir(), 'mailmoat-ca-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const { certPath, keyPath } = await initCa(join(dir, 'ca'));

t.test('the CA: a critical basicConstraints CA with path length 0, key 0600, never overwritten', async (t) => {
  const ca = new X509Certificate(await readFile(certPath));
  t.ok(ca.ca, 'CA:TRUE');
  t.match(ca.subject, /CN=mailmoat interception CA/);
  t.ok(ca.verify(ca.publicKey), 'self-signed');
  t.ok(new Date(ca.validTo).getTime() - Date.now() > 9 * 365 * 86_400_000, 'valid for years');
  t.equal((await stat(keyPath)).mode & 0o777, 0o600, 'the key is readable by its owner only');
  await t.rejects(initCa(join(dir, 'ca')), /already exists: mailmoat never overwrites a CA/);
});

t.test('leaves: the name in subjectAltName (DNS or IP), signed by the CA, short-lived, cached', async (t) => {
  const now = Date.now();
  const issuer = await LeafIssuer.load(certPath, keyPath, 24, () => now);
  const ca = new X509Certificate(await readFile(certPath));
  for (const [name, check] of [['mx.example.org', 'host'], ['127.0.0.1', 'ip']] as const) {
    const setup = { leafFor: (leafName: string) => issuer.contextFor(leafName), upstreamRoots: [], upstreamContext: upstreamContext([]), verifyUpstream: true };
    const server = createServer((raw) => {
      acceptTls(raw, setup, name, 5).then((socket) => socket.end('hello'), () => raw.destroy());
    });
    t.teardown(() => server.close());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket: TLSSocket = await new Promise((resolve, reject) => {
      const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ca: [issuer.caPem], ...(check === 'host' ? { servername: name } : {}), checkServerIdentity: () => undefined }, () => resolve(client));
      client.on('error', reject);
    });
    t.ok(socket.authorized, `${name}: the chain verifies against our CA`);
    const leaf = new X509Certificate(socket.getPeerX509Certificate()?.raw ?? Buffer.alloc(0));
    t.ok(leaf.verify(ca.publicKey), `${name}: signed by the CA`);
    t.notOk(leaf.ca, `${name}: not a CA`);
    t.equal(check === 'host' ? leaf.checkHost(name) : leaf.checkIP(name), name, `${name}: named in subjectAltName`);
    t.equal(new Date(leaf.validTo).getTime() - (now - (now % 1000)), 24 * 3600 * 1000, `${name}: valid for 24 h`);
    socket.destroy();
  }
  t.equal(issuer.contextFor('MX.example.org'), issuer.contextFor('mx.example.org'), 'issued once per name (case-insensitive), then cached');
});

t.test('a missing or unreadable CA is a clear error', async (t) => {
  await t.rejects(LeafIssuer.load(join(dir, 'none.pem'), keyPath), /cannot read the CA certificate \(tls\.ca_cert\)/);
  await t.rejects(LeafIssuer.load(keyPath, certPath), /cannot be read/);
});
