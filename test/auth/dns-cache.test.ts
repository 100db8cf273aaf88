// The DNS answer cache (auth.dns_cache_seconds), with questions counted at a real DNS server on
// loopback (dns2) and time driven by a clock the test holds (no sleeps): a second message from the
// same sender asks nothing, the answers expire, failures (SERVFAIL, a server that never answers) are
// never kept, NXDOMAIN and NODATA are kept briefly, a cached answer is given even once the message's
// DNS budget is spent, the sender's public key is parsed once while its answer is kept, and the
// bounds evict the oldest answers.
import t from 'tap';
import crypto, { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { MessageAuthenticator, type AuthenticationEvent, type ForwardedMessage } from '../../src/auth/authenticator.js';
import { DnsAnswerCache, MAX_CACHED_ANSWERS, MAX_CACHED_BYTES, NEGATIVE_ANSWER_SECONDS } from '../../src/auth/dns-cache.js';
import { BudgetedResolver } from '../../src/auth/resolver.js';
import { parsePolicyText } from '../../src/config/load.js';
import { arcKeyRecord } from '../../src/auth/keygen.js';
import type { InspectionContext } from '../../src/inspect/api.js';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';

const CACHE_SECONDS = 300;
const sender = generateKeyPairSync('rsa', { modulusLength: 1024 });
const sealer = generateKeyPairSync('ed25519');
const context: InspectionContext = { sessionId: 's', direction: 'inbound', sender: '<a@sender.example>', recipients: ['<b@example.net>'], client: { address: '192.0.2.25', helo: 'mx.sender.example' } };

function publish(dns: TestDns): void {
  dns.setTxt('s1._domainkey.sender.example', arcKeyRecord('s1', 'sender.example', sender.publicKey.export({ type: 'spki', format: 'der' })).value);
  dns.setTxt('sender.example', 'v=spf1 ip4:192.0.2.0/24 -all');
  dns.setTxt('_dmarc.sender.example', 'v=DMARC1; p=reject');
  dns.setTxt('mm._domainkey.mailmoat.test', arcKeyRecord('mm', 'mailmoat.test', sealer.publicKey.export({ type: 'spki', format: 'der' }), 'ed25519').value);
}

async function signedMessage(): Promise<Buffer> {
  const message = Buffer.from('From: a@sender.example\r\nTo: b@example.net\r\nSubject: s\r\n\r\nbody line\r\n', 'latin1');
  const { signatures } = await dkimSign(message, { canonicalization: 'relaxed/relaxed', signatureData: [{ signingDomain: 'sender.example', selector: 's1', privateKey: sender.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }] });
  return Buffer.concat([Buffer.from(signatures, 'latin1'), message]);
}

const source = (bytes: Buffer): ForwardedMessage => ({ size: bytes.length, async *open() { yield bytes; }, dispose: async () => undefined });

/** A clock the test moves: milliseconds since the epoch. */
function testClock(): { now: () => number; advance(seconds: number): void } {
  let ms = Date.parse('2026-12-07T12:00:00Z');
  return { now: () => ms, advance: (seconds) => void (ms += seconds * 1000) };
}

function authenticator(dns: TestDns, clock: { now: () => number }, dnsCacheSeconds: number, events: AuthenticationEvent[]): MessageAuthenticator {
  return new MessageAuthenticator(
    {
      authservId: 'mailmoat.test',
      arc: { domain: 'mailmoat.test', selector: 'mm', privateKey: sealer.privateKey },
      resolver: { server: dns.address, budgetMs: 5000 },
      dnsCacheSeconds,
      sealOutbound: false,
      resultsOnEveryMessage: false,
      maxHeaderBytes: 65536,
      now: () => new Date(clock.now()),
    },
    (event) => events.push(event),
  );
}

t.test('a second message from the same sender asks nothing; past auth.dns_cache_seconds it asks again', async (t) => {
  const dns = await startTestDns(t);
  publish(dns);
  const clock = testClock();
  const events: AuthenticationEvent[] = [];
  const auth = authenticator(dns, clock, CACHE_SECONDS, events);
  const signed = await signedMessage();
  await auth.apply(source(signed), source(signed), context);
  const first = dns.questions.length;
  t.ok(first >= 3, `the first message asks (DKIM key, SPF, DMARC): ${first} questions`);
  clock.advance(CACHE_SECONDS - 1);
  await auth.apply(source(signed), source(signed), context);
  t.equal(dns.questions.length, first, 'the second message asks nothing');
  t.match(events, [
    { results: [/^dkim=pass /, /^spf=pass /, /^dmarc=pass /] },
    { results: [/^dkim=pass /, /^spf=pass /, /^dmarc=pass /] },
  ], 'and is judged the same from the cached answers');
  clock.advance(1);
  await auth.apply(source(signed), source(signed), context);
  t.equal(dns.questions.length, 2 * first, 'expired: the third message asks again');
});

t.test('the public key parsed from a kept answer is parsed once (mailauth patched), until the answer expires', async (t) => {
  const dns = await startTestDns(t);
  publish(dns);
  const clock = testClock();
  const events: AuthenticationEvent[] = [];
  const auth = authenticator(dns, clock, CACHE_SECONDS, events);
  const signed = await signedMessage();
  const parses = t.capture(crypto, 'createPublicKey', crypto.createPublicKey);
  await auth.apply(source(signed), source(signed), context);
  t.ok(parses().length >= 1, 'the first message parses the sender\'s key');
  await auth.apply(source(signed), source(signed), context);
  t.equal(parses().length, 0, 'the second does not');
  clock.advance(CACHE_SECONDS);
  await auth.apply(source(signed), source(signed), context);
  t.ok(parses().length >= 1, 'expired: parsed again');
  t.match(events, [{ results: [/^dkim=pass /] }, { results: [/^dkim=pass /] }, { results: [/^dkim=pass /] }]);
});

t.test('auth.dns_cache_seconds: 0 keeps nothing', async (t) => {
  const dns = await startTestDns(t);
  publish(dns);
  const auth = authenticator(dns, testClock(), 0, []);
  const signed = await signedMessage();
  await auth.apply(source(signed), source(signed), context);
  const first = dns.questions.length;
  await auth.apply(source(signed), source(signed), context);
  t.equal(dns.questions.length, 2 * first);
});

t.test('SERVFAIL is not kept: the next message asks again, and gets the answer once the server has it', async (t) => {
  const dns = await startTestDns(t);
  publish(dns);
  dns.failName('s1._domainkey.sender.example');
  const events: AuthenticationEvent[] = [];
  const auth = authenticator(dns, testClock(), CACHE_SECONDS, events);
  const signed = await signedMessage();
  await auth.apply(source(signed), source(signed), context);
  t.match(events[0]?.results[0], /^dkim=(temperror|neutral)/, 'the DKIM check could not get the key');
  t.notMatch(events[0]?.results[0], /^dkim=pass/);
  const askedKey = (): number => dns.questions.filter((question) => question.name === 's1._domainkey.sender.example').length;
  t.equal(askedKey(), 1);
  publish(dns);
  await auth.apply(source(signed), source(signed), context);
  t.equal(askedKey(), 2, 'asked again');
  t.match(events[1]?.results[0], /^dkim=pass /);
});

t.test('a server that never answers: the timeout is not kept, the next message asks again', async (t) => {
  const dns = await startTestDns(t, { silent: true });
  const cache = new DnsAnswerCache({ answerSeconds: CACHE_SECONDS, now: testClock().now });
  const resolver = new BudgetedResolver({ server: dns.address, budgetMs: 200 }, cache);
  for (const message of [1, 2]) {
    const { lookup, close } = resolver.forMessage();
    await t.rejects(lookup('sender.example', 'TXT'), { code: 'ETIMEOUT' }, `message ${message}: temperror`);
    close();
  }
  t.equal(dns.questions.filter((question) => question.name === 'sender.example').length, 2, 'each message asked');
  // The budget ends a lookup before c-ares reports its own timeout; the cache is told that one too.
  for (const code of ['ETIMEOUT', 'ESERVFAIL', 'EREFUSED', 'ECONNREFUSED']) cache.storeFailure('sender.example', 'TXT', Object.assign(new Error(code), { code }));
  t.equal(cache.size, 0, 'no failure is kept');
});

t.test('NXDOMAIN and NODATA are kept for NEGATIVE_ANSWER_SECONDS', async (t) => {
  const dns = await startTestDns(t);
  dns.setTxt('txt-only.example', 'v=spf1 -all');
  const clock = testClock();
  const resolver = new BudgetedResolver({ server: dns.address, budgetMs: 5000 }, new DnsAnswerCache({ answerSeconds: CACHE_SECONDS, now: clock.now }));
  const ask = async (): Promise<void> => {
    const { lookup, close } = resolver.forMessage();
    t.teardown(close);
    await t.rejects(lookup('missing.example', 'TXT'), { code: 'ENOTFOUND' });
    await t.rejects(lookup('txt-only.example', 'A'), { code: 'ENODATA' });
  };
  await ask();
  t.equal(dns.questions.length, 2);
  clock.advance(NEGATIVE_ANSWER_SECONDS - 1);
  await ask();
  t.equal(dns.questions.length, 2, 'both absences answered from the cache');
  clock.advance(1);
  await ask();
  t.equal(dns.questions.length, 4, 'then asked again');
});

t.test('a cached answer is given once the message\'s budget is spent, case-insensitively, TXT frozen', async (t) => {
  const dns = await startTestDns(t);
  dns.setTxt('sender.example', 'v=spf1 -all');
  const cache = new DnsAnswerCache({ answerSeconds: CACHE_SECONDS, now: testClock().now });
  const warm = new BudgetedResolver({ server: dns.address, budgetMs: 5000 }, cache).forMessage();
  t.same(await warm.lookup('sender.example', 'TXT'), [['v=spf1 -all']]);
  warm.close();
  const silent = await startTestDns(t, { silent: true });
  const { lookup, close } = new BudgetedResolver({ server: silent.address, budgetMs: 200 }, cache).forMessage();
  t.teardown(close);
  await t.rejects(lookup('other.example', 'TXT'), { code: 'ETIMEOUT' }, 'the budget is spent');
  const answer = await lookup('SENDER.example.', 'TXT');
  t.same(answer, [['v=spf1 -all']], 'the cached answer all the same');
  t.ok(Array.isArray(answer) && Object.isFrozen(answer) && answer.every((strings) => Object.isFrozen(strings)), 'frozen: no reader can change what the next message reads');
  t.equal(await lookup('sender.example', 'TXT'), answer, 'the same object each time (the parsed key is kept with it)');
  t.equal(silent.questions.length, 1, 'only the uncached name was asked');
});

t.test('other answers (an MX list, which mailauth sorts in place) are given as copies', async (t) => {
  const cache = new DnsAnswerCache({ answerSeconds: CACHE_SECONDS, now: testClock().now });
  cache.storeRecords('sender.example', 'MX', [{ exchange: 'b.example', priority: 20 }, { exchange: 'a.example', priority: 10 }]);
  const given = cache.get('sender.example', 'MX');
  if (given === undefined || !('records' in given) || !Array.isArray(given.records)) throw new Error('no MX answer');
  given.records.sort((a: { priority: number }, b: { priority: number }) => a.priority - b.priority);
  t.same(cache.get('sender.example', 'MX'), { records: [{ exchange: 'b.example', priority: 20 }, { exchange: 'a.example', priority: 10 }] });
});

t.test('bounds: past MAX_CACHED_ANSWERS the oldest goes; an answer over MAX_CACHED_BYTES is not kept, large ones push out old ones', async (t) => {
  const cache = new DnsAnswerCache({ answerSeconds: CACHE_SECONDS, now: testClock().now });
  for (let index = 0; index <= MAX_CACHED_ANSWERS; index++) cache.storeRecords(`n${index}.example`, 'TXT', [[`v${index}`]]);
  t.equal(cache.size, MAX_CACHED_ANSWERS);
  t.equal(cache.get('n0.example', 'TXT'), undefined, 'the oldest is gone');
  t.same(cache.get('n1.example', 'TXT'), { records: [['v1']] }, 'the next is kept');
  t.same(cache.get(`n${MAX_CACHED_ANSWERS}.example`, 'TXT'), { records: [[`v${MAX_CACHED_ANSWERS}`]] }, 'the newest is kept');

  const bytes = new DnsAnswerCache({ answerSeconds: CACHE_SECONDS, now: testClock().now });
  bytes.storeRecords('huge.example', 'TXT', [['x'.repeat(MAX_CACHED_BYTES)]]);
  t.equal(bytes.size, 0, 'larger than the whole cache: not kept');
  const quarter = 'y'.repeat(MAX_CACHED_BYTES / 4);
  for (let index = 0; index < 4; index++) bytes.storeRecords(`q${index}.example`, 'TXT', [[quarter]]);
  t.equal(bytes.size, 3, 'four quarters (with their keys) do not fit');
  t.equal(bytes.get('q0.example', 'TXT'), undefined, 'the oldest went');
  t.not(bytes.get('q3.example', 'TXT'), undefined);
});

t.test('auth.dns_cache_seconds in the policy: 300 by default, 0 allowed, negative or fractional refused', async (t) => {
  t.equal(parsePolicyText('', 'x').auth.dns_cache_seconds, 300);
  t.equal(parsePolicyText('auth:\n  dns_cache_seconds: 0\n', 'x').auth.dns_cache_seconds, 0);
  t.throws(() => parsePolicyText('auth:\n  dns_cache_seconds: -1\n', 'x'), /auth\.dns_cache_seconds/);
  t.throws(() => parsePolicyText('auth:\n  dns_cache_seconds: 1.5\n', 'x'), /auth\.dns_cache_seconds/);
});
