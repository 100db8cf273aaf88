// The sealer's own relaxed canonicalization (src/auth/canonical.ts) against RFC 6376's example and
// against Debian's dkimpy (an independent implementation) over bodies made to hit every case (WSP runs,
// trailing WSP, lines of WSP only, empty lines inside and at the end) cut into chunks of many sizes, the
// same for mailauth's hasher as patched (its verifier hashes the original with it); and an
// Ed25519 seal read back by mailauth's ARC verifier, as the next mailmoat on the path would read it.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { dkimBody } from 'mailauth/lib/dkim/body/index.js';
import { RelaxedBodyHash, relaxedHeader } from '../../src/auth/canonical.js';
import { MessageAuthenticator, type ForwardedMessage } from '../../src/auth/authenticator.js';
import { arcKeyRecord } from '../../src/auth/keygen.js';
import { authenticate } from '../../src/auth/verify.js';
import { BudgetedResolver } from '../../src/auth/resolver.js';
import { startTestDns } from '../helpers/dns-server.js';

/** mailauth's relaxed body hash (its DKIM verifier's, with patches/ making its common case a native search). */
function mailauths(body: Buffer, chunkBytes: number): string {
  const hash = dkimBody('relaxed', 'sha256');
  for (let start = 0; start < body.length; start += chunkBytes) hash.update(body.subarray(start, start + chunkBytes));
  return hash.digest('base64');
}

function ours(body: Buffer, chunkBytes: number): string {
  const hash = new RelaxedBodyHash();
  for (let start = 0; start < body.length; start += chunkBytes) hash.update(body.subarray(start, start + chunkBytes));
  return hash.digest();
}

/** dkimpy's relaxed body hashes of `bodies` (Debian's interpreter, for which python3-dkim is installed). */
function dkimpys(bodies: readonly Buffer[]): string[] {
  const script = 'import base64,hashlib,json,sys\nfrom dkim.canonicalization import Relaxed\n' +
    'print(json.dumps([base64.b64encode(hashlib.sha256(Relaxed.canonicalize_body(base64.b64decode(b))).digest()).decode() for b in json.load(sys.stdin)]))';
  return JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(bodies.map((body) => body.toString('base64'))) }).toString()) as string[];
}

t.test('RFC 6376 3.4.6: the relaxed example', async (t) => {
  const body = Buffer.from(' C \r\nD \t E\r\n\r\n\r\n', 'latin1');
  const expected = createHash('sha256').update(' C\r\nD E\r\n').digest('base64');
  for (let size = 1; size <= body.length; size++) t.equal(ours(body, size), expected, `chunks of ${size}`);
  t.equal(ours(Buffer.alloc(0), 1), createHash('sha256').update('').digest('base64'), 'an empty body hashes to nothing (3.4.4)');
  t.equal(ours(Buffer.from('\r\n\r\n', 'latin1'), 1), createHash('sha256').update('').digest('base64'), 'empty lines only: nothing');
  t.equal(ours(Buffer.from('x', 'latin1'), 1), createHash('sha256').update('x\r\n').digest('base64'), 'a missing final CRLF is added');
  // mailauth 4.9.5 hashes this one wrong (the tab of an unterminated last line after other lines).
  t.equal(ours(Buffer.from('QUJD\r\n leading\r\nplain line\r\ntab\there', 'latin1'), 5), createHash('sha256').update('QUJD\r\n leading\r\nplain line\r\ntab here\r\n').digest('base64'));
  // A bare CR is not WSP (RFC 5234 B.1), so the space before it stays (dkimpy agrees; mailauth 4.9.5 drops it).
  t.equal(ours(Buffer.from('end \r\r\n', 'latin1'), 1), createHash('sha256').update('end \r\r\n').digest('base64'), 'a space before a bare CR is kept');
  t.equal(relaxedHeader('SubJect :  a \t b\r\n\t c  \r\n'), 'subject:a b c');
});

t.test('the same hash as dkimpy\'s for every case and many chunkings (ours, and patched mailauth\'s)', async (t) => {
  const lines = ['plain line', 'two  spaces', 'tab\there', 'trailing \t ', ' leading', '\t', '   ', '', 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=', 'x\ry', 'end \r'];
  let seed = 7;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
  const bodies = Array.from({ length: 60 }, (_, round) => {
    const picked = Array.from({ length: 1 + (next() % 12) }, () => lines[next() % lines.length] ?? '');
    return Buffer.from(picked.join('\r\n') + '\r\n'.repeat(1 + (round % 4)), 'latin1');
  });
  const expected = dkimpys(bodies);
  for (const [index, body] of bodies.entries()) {
    const mismatched = [1, 2, 3, 5, 7, 11, body.length].filter((size) => ours(body, size) !== expected[index]);
    t.same(mismatched, [], JSON.stringify(body.toString('latin1')));
    // mailauth drops a space before a bare CR (patched or not; see above), so those bodies are ours and dkimpy's only.
    if (!body.includes(' \r\r')) t.same([1, 3, 64, body.length].filter((size) => mailauths(body, size) !== expected[index]), [], `mailauth: ${JSON.stringify(body.toString('latin1'))}`);
  }
});

t.test('an Ed25519 seal verifies with mailauth (the next mailmoat on the path)', async (t) => {
  const dns = await startTestDns(t);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  dns.setTxt('mm._domainkey.mailmoat.test', arcKeyRecord('mm', 'mailmoat.test', publicKey.export({ type: 'spki', format: 'der' }), 'ed25519').value);
  // Enough signed fields that h= is folded over two lines.
  const message = Buffer.from('From: a@sender.example\r\nReply-To: a@sender.example\r\nTo: b@example.net\r\nCc: c@example.net\r\nIn-Reply-To: <p@sender.example>\r\nSubject: s\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m@sender.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody  line \r\n\r\n', 'latin1');
  const source: ForwardedMessage = { size: message.length, async *open() { yield message; }, dispose: async () => undefined };
  const sealer = new MessageAuthenticator({
    authservId: 'mailmoat.test',
    arc: { domain: 'mailmoat.test', selector: 'mm', privateKey },
    resolver: { server: dns.address, budgetMs: 5000 },
    dnsCacheSeconds: 300,
    sealOutbound: false,
    resultsOnEveryMessage: false,
    maxHeaderBytes: 65536,
  });
  const sealed = await sealer.apply(source, source, { sessionId: 's', direction: 'inbound', sender: '<a@sender.example>', recipients: ['<b@example.net>'] });
  const chunks: Buffer[] = [];
  for await (const chunk of sealed.open()) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  t.match(bytes.toString('latin1'), /^ARC-Seal: i=1; a=ed25519-sha256; /);
  t.match(bytes.toString('latin1'), /\r\n\th=[^;]*:\r\n\t[^;]*;\r\n/, 'h= folded');
  const lookup = new BudgetedResolver({ server: dns.address, budgetMs: 5000 }).forMessage();
  const read = await authenticate({ size: bytes.length, async *open() { yield bytes; } }, { sender: '<a@sender.example>' }, lookup.lookup, 'next.example');
  lookup.close();
  t.equal(read.chain, 'pass', `mailauth: ${read.results.join('; ')}`);
  const tampered = Buffer.from(bytes.toString('latin1').replace('body  line', 'body line!'), 'latin1');
  const again = new BudgetedResolver({ server: dns.address, budgetMs: 5000 }).forMessage();
  t.equal((await authenticate({ size: tampered.length, async *open() { yield tampered; } }, { sender: '<a@sender.example>' }, again.lookup, 'next.example')).chain, 'fail', 'a changed body fails');
  again.close();
});
