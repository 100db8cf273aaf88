// The authenticator on its own, against a loopback DNS server: the forwarded bytes do not depend on how
// the rewritten message is chunked (signatures are deterministic with a fixed clock), a message of
// header fields only is handled, and what must be left alone is (a TOP fragment, outbound mail).
import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { MessageAuthenticator, type AuthenticationEvent, type ForwardedMessage } from '../../src/auth/authenticator.js';
import { arcKeyRecord } from '../../src/auth/keygen.js';
import type { InspectionContext } from '../../src/inspect/api.js';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';
import { dkimpyArcVerify } from '../helpers/dkimpy.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const context: InspectionContext = { sessionId: 's', direction: 'inbound', sender: '<a@sender.example>', recipients: ['<b@example.net>'] };

function source(bytes: Buffer, chunkBytes = bytes.length): ForwardedMessage & { disposed: boolean } {
  return {
    size: bytes.length,
    disposed: false,
    async *open() {
      for (let start = 0; start < bytes.length; start += chunkBytes) yield bytes.subarray(start, start + chunkBytes);
    },
    async dispose() {
      this.disposed = true;
    },
  };
}

async function read(message: ForwardedMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of message.open()) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function authenticator(dns: TestDns, events: AuthenticationEvent[] = []): MessageAuthenticator {
  return new MessageAuthenticator(
    {
      authservId: 'mailmoat.test',
      arc: { domain: 'mailmoat.test', selector: 'mm', privateKey },
      resolver: { server: dns.address, budgetMs: 5000 },
      dnsCacheSeconds: 300,
      sealOutbound: false,
      resultsOnEveryMessage: false,
      maxHeaderBytes: 65536,
      now: () => new Date('2026-12-07T12:00:00Z'),
    },
    (event) => events.push(event),
  );
}

const message = Buffer.from('Authentication-Results: mailmoat.test; dkim=pass\r\nFrom: a@sender.example\r\nSubject: s\r\n\r\nbody line\r\n', 'latin1');

t.test('the forwarded bytes do not depend on chunking; dkimpy validates the seal', async (t) => {
  const dns = await startTestDns(t);
  dns.setTxt('mm._domainkey.mailmoat.test', arcKeyRecord('mm', 'mailmoat.test', publicKey.export({ type: 'spki', format: 'der' })).value);
  const events: AuthenticationEvent[] = [];
  const whole = await read(await authenticator(dns, events).apply(source(message), source(message), context));
  const chunked = source(message, 3);
  const forwarded = await authenticator(dns).apply(source(message, 5), chunked, context);
  t.equal(forwarded.size, whole.length, 'size matches the bytes');
  t.equal((await read(forwarded)).toString('latin1'), whole.toString('latin1'), 'same bytes from 3-byte chunks');
  t.match(whole.toString('latin1'), /\r\nFrom: a@sender\.example\r\nSubject: s\r\n\r\nbody line\r\n$/, 'the rewritten header and body follow ours');
  t.notMatch(whole.toString('latin1'), /mailmoat\.test; dkim=pass/, 'the forged field is gone');
  t.match(events, [{ chain: 'none', sealed: 1, forgedRemoved: 1 }]);
  await forwarded.dispose();
  t.ok(chunked.disposed, 'disposing the forwarded message disposes the rewritten one');
  t.equal((await dkimpyArcVerify(whole, dns.port)).cv, 'pass');
});

t.test('a message of header fields only', async (t) => {
  const dns = await startTestDns(t);
  const headerOnly = Buffer.from('From: a@sender.example\r\nSubject: s\r\n', 'latin1');
  const forwarded = await read(await authenticator(dns).apply(source(headerOnly), source(headerOnly, 4), context));
  t.match(forwarded.toString('latin1'), /^ARC-Seal: i=1; [^]*\r\nAuthentication-Results: mailmoat\.test;\r\n\tdkim=none[^]*\r\nFrom: a@sender\.example\r\nSubject: s\r\n$/);
});

t.test('left alone: a TOP fragment, and outbound mail unless seal_outbound', async (t) => {
  const dns = await startTestDns(t);
  const sealer = authenticator(dns);
  const rewritten = source(message);
  t.equal(await sealer.apply(source(message), rewritten, { ...context, partial: true }), rewritten);
  t.equal(await sealer.apply(source(message), rewritten, { ...context, direction: 'outbound' }), rewritten);
  t.equal(dns.questions.length, 0, 'no lookup');
});
