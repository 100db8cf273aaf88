// POP3 STLS per policy (RFC 2595) and implicit TLS (995, RFC 8314), between real
// peers: Python poplib (verifying against a CA) -> mailmoat -> a real Dovecot with
// ssl = yes and its own certificate.
import t, { type Test } from 'tap';
import { connect as tlsConnect } from 'node:tls';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validatePolicy } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { demoSamples } from '../../src/demo/samples.js';
import { initCa } from '../../src/tls/ca.js';
import { createTestPki } from '../../bench/test-pki.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { startListener, type ListenerSettings } from '../helpers/proxy.js';
import { poplibSession, type PoplibStep } from '../helpers/poplib.js';
import { RawPop3 } from '../helpers/pop3-raw.js';

const dir = await mkdtemp(join(tmpdir(), 'mailmoat-tls-pop3-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const pki = await createTestPki(join(dir, 'upstream-pki'));
const ca = await initCa(join(dir, 'mailmoat-ca'));
const inspector = await createMailInspector(validatePolicy({}, 'test'));
t.teardown(() => inspector.close());
const executable = demoSamples().find((sample) => sample.title.startsWith('invoice.pdf.exe'))?.content ?? Buffer.alloc(0);
const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [executable] }], { tls: { certFile: pki.certFile, keyFile: pki.keyFile } });

function proxyFor(t: Test, listener: ListenerSettings, upstream = `127.0.0.1:${dovecot.port}`, upstreamCa = pki.caFile, pop3 = {}) {
  return startListener(t, 'pop3', upstream, { tls: { ca_cert: ca.certPath, ca_key: ca.keyPath, upstream_ca: upstreamCa }, pop3 }, inspector, listener);
}

const login: PoplibStep[] = [['user', 'alice'], ['pass', 'secret']];

t.test('intercept: STLS answered by mailmoat with our leaf, Dovecot verified, RETR inspected inside TLS', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'intercept' });
  const results = await poplibSession(proxy.port, [['capa'], ['stls'], ['capa'], ...login, ['retr', 1], ['quit']], 30, { cafile: ca.certPath });
  t.ok(results.every((result) => result.ok), results.find((result) => !result.ok)?.error ?? 'every step answered');
  t.ok(results[1]?.capabilities?.includes('STLS'), 'STLS offered before TLS');
  t.equal(results[2]?.issuer, 'mailmoat interception CA', 'poplib verified a leaf from our CA');
  t.notOk(results[3]?.capabilities?.includes('STLS'), 'not offered again inside TLS');
  t.match(results[6]?.data?.toString('latin1'), /mailmoat removed the attachment "invoice\.pdf\.exe"/);
  t.match(proxy.retrievals[0], { tls: 'intercepted', verdict: 'rewrite' });
});

t.test('passthrough: TLS end to end with Dovecot, not inspected, counted', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'passthrough' });
  const results = await poplibSession(proxy.port, [['stls'], ...login, ['retr', 1], ['quit']], 30, { cafile: pki.caFile, serverHostname: 'localhost' });
  t.ok(results.every((result) => result.ok), results.find((result) => !result.ok)?.error ?? 'every step answered');
  t.equal(results[1]?.issuer, 'mailmoat test upstream CA', "poplib verified Dovecot's own certificate");
  t.match(results[4]?.data?.toString('latin1'), /invoice\.pdf\.exe/, 'the executable arrives: passthrough is not inspected');
  t.equal(proxy.passthroughs(), 1);
  t.equal(proxy.retrievals.length, 0);
});

t.test('strip: STLS is not offered and is refused', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'strip' });
  const results = await poplibSession(proxy.port, [['capa'], ['stls', 'may-fail'], ...login, ['retr', 1], ['quit']]);
  t.notOk(results[1]?.capabilities?.includes('STLS'));
  t.notOk(results[2]?.ok, 'poplib refuses STLS that is not offered');
  t.match(results[5]?.data?.toString('latin1'), /mailmoat removed the attachment/, 'inspected in plaintext');
});

t.test('an upstream whose certificate does not verify: -ERR [SYS/TEMP], the session ends', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'intercept' }, `127.0.0.1:${dovecot.port}`, '');
  const results = await poplibSession(proxy.port, [['stls']], 30, { cafile: ca.certPath });
  t.match(results[1]?.error, /-ERR \[SYS\/TEMP\] Upstream server certificate not trusted/);
});

t.test('STLS command injection (CVE-2011-0411): plaintext behind STLS is discarded', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'intercept' });
  const client = await RawPop3.connect(proxy.port);
  t.teardown(() => client.close());
  t.match(await client.line(), /^\+OK/);
  client.send('STLS\r\nQUIT\r\n');
  t.equal(await client.line(), '+OK Begin TLS negotiation');
  const secure = tlsConnect({ socket: client.socket, ca: [await readFile(ca.certPath, 'utf8')], servername: 'localhost' });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  t.ok(secure.authorized);
  // Everything inside TLS up to the first complete line (or the close): waited for, not timed.
  const firstLine = new Promise<string>((resolve) => {
    let text = '';
    secure.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n')) resolve(text);
    });
    secure.once('close', () => resolve(text));
  });
  secure.write('NOOP\r\n');
  t.match(await firstLine, /^-ERR Command not valid in this state\r\n$/, 'the session is alive (the injected QUIT was not run) and answers NOOP');
  t.equal(client.pending.length, 0, 'nothing more came in plaintext');
  secure.destroy();
  t.ok(proxy.logs.some((line) => line.msg === 'discarded plaintext sent behind STLS (CVE-2011-0411)' && line.bytes === 6));
});

t.test('implicit TLS (995): POP3S on accept, POP3S to Dovecot, inspected', async (t) => {
  const proxy = await proxyFor(t, { tls: 'implicit' }, `127.0.0.1:${dovecot.pop3sPort ?? 0}`);
  const results = await poplibSession(proxy.port, [...login, ['retr', 1], ['quit']], 30, { ssl: true, cafile: ca.certPath, serverHostname: 'localhost' });
  t.ok(results.every((result) => result.ok), results.find((result) => !result.ok)?.error ?? 'every step answered');
  t.equal(results[0]?.issuer, 'mailmoat interception CA');
  t.match(results[3]?.data?.toString('latin1'), /mailmoat removed the attachment/);
  t.match(proxy.retrievals[0], { tls: 'implicit' });
});

t.test('USER name#host with STLS first: mailmoat answers STLS, then requires STLS upstream', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'intercept' }, 'from-username', pki.caFile, { upstream_hosts: ['localhost'], upstream_ports: [dovecot.port] });
  const results = await poplibSession(proxy.port, [['capa'], ['stls'], ['user', `alice#localhost:${dovecot.port}`], ['pass', 'secret'], ['retr', 1], ['quit']], 30, { cafile: ca.certPath, serverHostname: 'localhost' });
  t.ok(results.every((result) => result.ok), results.find((result) => !result.ok)?.error ?? 'every step answered');
  t.ok(results[1]?.capabilities?.includes('STLS'), 'mailmoat offers STLS before it knows the server');
  t.ok(proxy.logs.some((line) => line.msg === 'upstream TLS established' && line.authorized === true), 'the upstream leg is TLS too, verified');
  t.match(results[5]?.data?.toString('latin1'), /mailmoat removed the attachment/);
});
