// Verification of the original on its own: a DKIM signature whose l= tag claims more body than the
// message has is judged (neutral: the body hash does not verify) without mailauth printing to stdout, where mailmoat's JSON log lines go
// (patches/mailauth+4.9.5.patch removes its debug line); without a client address there is no SPF or
// DMARC row.
import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { authenticate } from '../../src/auth/verify.js';
import { BudgetedResolver } from '../../src/auth/resolver.js';
import { arcKeyRecord } from '../../src/auth/keygen.js';
import { startTestDns } from '../helpers/dns-server.js';
import { dkimpySign } from '../helpers/dkimpy.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const bytesSource = (bytes: Buffer) => ({ size: bytes.length, async *open() { yield bytes; } });

t.test('an l= signature over a body cut short: dkim=neutral, nothing printed, no SPF/DMARC without a client', async (t) => {
  const dns = await startTestDns(t);
  dns.setTxt('s1._domainkey.sender.example', arcKeyRecord('s1', 'sender.example', publicKey.export({ type: 'spki', format: 'der' })).value);
  const message = Buffer.from('From: a@sender.example\r\nTo: b@example.net\r\nSubject: s\r\n\r\nsigned text\r\n', 'latin1');
  const signed = await dkimpySign(message, 's1', 'sender.example', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), dns.port, true);
  const cut = Buffer.from(signed.toString('latin1').replace('signed text\r\n', 'signed\r\n'), 'latin1');
  const printed = t.capture(console, 'log');
  const dnsForMessage = new BudgetedResolver({ server: dns.address, budgetMs: 5000 }).forMessage();
  t.teardown(dnsForMessage.close);
  const verified = await authenticate(bytesSource(cut), { sender: '<a@sender.example>' }, dnsForMessage.lookup, 'mailmoat.test');
  t.same(printed(), [], 'nothing written with console.log');
  t.match(verified.results, [/^dkim=neutral \(body hash did not verify\) .*header\.s=s1/]);
  t.equal(verified.results.length, 1, 'no spf or dmarc row without a client address');
  t.match(verified, { chain: 'none', instance: 0, sealable: true });
});
