// SMTP STARTTLS per policy (RFC 3207) and implicit TLS (RFC 8314), between real
// peers: Python smtplib (verifying against a CA) -> mailmoat -> a real Postfix smtpd
// with its own certificate (STARTTLS and SMTPS) -> smtp-sink, where what arrived is read.
import t, { type Test } from 'tap';
import { connect as tlsConnect } from 'node:tls';
import { connect } from 'node:net';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validatePolicy } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { demoSamples } from '../../src/demo/samples.js';
import { initCa } from '../../src/tls/ca.js';
import { createTestPki } from '../../bench/test-pki.js';
import { startTestPostfix } from '../helpers/postfix.js';
import { SmtpSink } from '../helpers/smtp-sink.js';
import { startListener, type ListenerSettings } from '../helpers/proxy.js';
import { smtplibSend } from '../helpers/smtplib.js';
import { RawClient } from '../helpers/client.js';

const dir = await mkdtemp(join(tmpdir(), 'mailmoat-tls-smtp-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const pki = await createTestPki(join(dir, 'upstream-pki'));
const ca = await initCa(join(dir, 'mailmoat-ca'));
const inspector = await createMailInspector(validatePolicy({}, 'test'));
t.teardown(() => inspector.close());
const sink = await SmtpSink.start(t);
const postfix = await startTestPostfix(t, { certFile: pki.certFile, keyFile: pki.keyFile, relayPort: sink.port, smtps: true });

const executable = demoSamples().find((sample) => sample.title.startsWith('invoice.pdf.exe'))?.content ?? Buffer.alloc(0);
const tlsPolicy = (upstreamCa = pki.caFile) => ({ tls: { ca_cert: ca.certPath, ca_key: ca.keyPath, upstream_ca: upstreamCa } });

function proxyFor(t: Test, listener: ListenerSettings, upstreamPort = postfix.port, upstreamCa?: string) {
  return startListener(t, 'smtp', `127.0.0.1:${upstreamPort}`, tlsPolicy(upstreamCa), inspector, listener);
}

/** Waits until smtp-sink has written `count` messages (Postfix relays them after its queue) and returns them. */
const delivered = (count: number) => sink.messages(count, 20_000);
const deliveredSoFar = async (): Promise<number> => (await sink.messages(0, 0)).length;

t.test('intercept: the client does TLS with mailmoat (our CA), mailmoat with Postfix (verified), and the mail is inspected', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'intercept' });
  const before = await deliveredSoFar();
  for (const serverHostname of [undefined, 'localhost']) {
    const result = await smtplibSend({ port: proxy.port, mode: 'starttls', cafile: ca.certPath, ...(serverHostname ? { serverHostname } : {}) }, executable);
    t.ok(result.ok, `${serverHostname ?? '127.0.0.1'}: sent (${result.error ?? result.response})`);
    t.ok(result.features_before?.includes('starttls'), 'STARTTLS offered before TLS');
    t.notOk(result.features_after?.includes('starttls'), 'and not after (RFC 3207 4.2)');
    t.equal(result.peer_issuer, 'mailmoat interception CA', 'the client saw a leaf from our CA');
    t.match(result.tls_version, /^TLSv1\.[23]$/);
  }
  const messages = await delivered(before + 2);
  // smtp-sink names dumps by the second: they are found by content, not by position.
  t.equal(messages.filter((message) => /mailmoat removed the attachment "invoice\.pdf\.exe"/.test(message.body)).length, 2, 'inspected inside TLS');
  t.same(proxy.transactions.map((summary) => [summary.tls, summary.verdict]), [['intercepted', 'rewrite'], ['intercepted', 'rewrite']]);
  t.ok(proxy.logs.some((line) => line.msg === 'upstream TLS established' && line.authorized === true), 'mailmoat verified Postfix');
  const maillog = await readFile(join(postfix.dir, 'maillog'), 'utf8');
  t.match(maillog, /TLS connection established from [a-z]*\[127\.0\.0\.1\]: TLSv1\.[23]/, 'Postfix saw TLS on the upstream leg');
});

t.test('passthrough: TLS end to end with Postfix, not inspected, counted', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'passthrough' });
  const before = await deliveredSoFar();
  const result = await smtplibSend({ port: proxy.port, mode: 'starttls', cafile: pki.caFile, serverHostname: 'localhost' }, executable);
  t.ok(result.ok, result.error ?? 'sent');
  t.equal(result.peer_issuer, 'mailmoat test upstream CA', "the client verified Postfix's own certificate");
  const messages = await delivered(before + 1);
  const unmodified = messages.filter((message) => !message.body.includes('mailmoat removed'));
  t.equal(unmodified.length, 1, 'the executable went through: passthrough is not inspected');
  t.match(unmodified[0]?.body, /filename="invoice\.pdf\.exe"/);
  t.equal(proxy.passthroughs(), 1, 'counted as uninspected');
  t.ok(proxy.logs.some((line) => line.msg === 'STARTTLS passed through: the rest of this session is not inspected'));
});

t.test('strip: STARTTLS is not offered and is refused with 454', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'strip' });
  const client = await RawClient.greeted(proxy.port);
  t.teardown(() => client.close());
  const ehlo = await client.command('EHLO c');
  t.notOk(ehlo.lines.some((line) => /^STARTTLS$/i.test(line)));
  t.same(await client.command('STARTTLS'), { code: 454, lines: ['4.7.0 TLS not available'] });
});

t.test('an upstream whose certificate does not verify is refused with 421 4.7.0', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'intercept' }, postfix.port, '');
  const result = await smtplibSend({ port: proxy.port, mode: 'starttls', cafile: ca.certPath }, executable);
  t.notOk(result.ok);
  t.match(result.error, /421.*4\.7\.0 Upstream server certificate not trusted/);
  t.ok(proxy.logs.some((line) => line.msg === 'upstream certificate not trusted: session refused'));
});

t.test('STARTTLS command injection (CVE-2011-0411): plaintext behind STARTTLS is discarded, EHLO starts over', async (t) => {
  const proxy = await proxyFor(t, { starttls: 'intercept' });
  const client = await RawClient.greeted(proxy.port);
  t.teardown(() => client.close());
  t.ok((await client.command('EHLO c')).lines.includes('STARTTLS'));
  client.send('STARTTLS\r\nRSET\r\n');
  const replies = await client.waitForReplies(3);
  t.same(replies[2], { code: 220, lines: ['2.0.0 Ready to start TLS'] });
  const secure = tlsConnect({ socket: client.socket, ca: [await readFile(ca.certPath, 'utf8')], servername: 'localhost' });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  t.ok(secure.authorized, 'the client verified our leaf');
  // Everything inside TLS up to the end of the first complete reply (or the close): waited for, not timed.
  const firstReply = new Promise<string>((resolve) => {
    let text = '';
    secure.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (/^\d{3} [^\r\n]*\r\n/m.test(text)) resolve(text);
    });
    secure.once('close', () => resolve(text));
  });
  secure.write('EHLO c\r\n');
  t.match(await firstReply, /^250-/, 'the first reply inside TLS is the EHLO reply, not one to the injected RSET');
  t.equal(client.replies.length, 3, 'and none came in plaintext (greeting, EHLO, 220 only)');
  secure.end('QUIT\r\n');
  t.ok(proxy.logs.some((line) => line.msg === 'discarded plaintext sent behind STARTTLS (CVE-2011-0411)' && line.bytes === 6));
});

t.test('implicit TLS (465): TLS on accept with our leaf, TLS to Postfix\'s SMTPS port, inspected', async (t) => {
  const proxy = await proxyFor(t, { tls: 'implicit' }, postfix.smtpsPort ?? 0);
  const before = await deliveredSoFar();
  const result = await smtplibSend({ port: proxy.port, mode: 'implicit', cafile: ca.certPath, serverHostname: 'localhost' }, executable);
  t.ok(result.ok, result.error ?? 'sent');
  t.equal(result.peer_issuer, 'mailmoat interception CA');
  t.notOk(result.features_before?.includes('starttls'), 'no STARTTLS inside implicit TLS');
  const messages = await delivered(before + 1);
  t.equal(messages.filter((message) => message.body.includes('mailmoat removed the attachment')).length, 3, 'inspected (the two intercepted ones and this one)');
  t.equal(proxy.transactions[0]?.tls, 'implicit');
});

t.test('implicit TLS behind a balancer: the PROXY header and the ClientHello in one write', async (t) => {
  const proxy = await proxyFor(t, { tls: 'implicit', proxy_protocol: true }, postfix.smtpsPort ?? 0);
  const raw = connect({ host: '127.0.0.1', port: proxy.port });
  await once(raw, 'connect');
  // Corked: the header and the ClientHello tls.connect writes leave in one segment.
  raw.cork();
  raw.write('PROXY TCP4 203.0.113.7 192.0.2.25 40000 465\r\n');
  const secure = tlsConnect({ socket: raw, ca: await readFile(ca.certPath), servername: 'localhost' });
  process.nextTick(() => raw.uncork());
  t.teardown(() => secure.destroy());
  const [greeting] = (await once(secure, 'data')) as [Buffer];
  t.match(greeting.toString('latin1'), /^220 /, 'the TLS handshake completed and Postfix greeted through it');
  t.ok(secure.authorized, 'with a leaf from our CA');
  t.ok(proxy.logs.some((line) => line.downstream === '203.0.113.7:40000'), 'the client named in the header is the downstream');
});
