// `mailmoat arc keygen`: the key file (0600, never overwritten), a record whose public key is the key's,
// split into DNS character-strings of at most 255 octets (for Ed25519, RFC 8463's raw 32 bytes); the
// CLI prints it; the policy refuses a half-configured auth.arc and a key neither RSA nor Ed25519.
import t from 'tap';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateArcKey } from '../../src/auth/keygen.js';
import { createAuthenticator } from '../../src/auth/create.js';
import { parsePolicyText } from '../../src/config/load.js';

const run = promisify(execFile);
const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');

t.test('the key and its record', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-keygen-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { keyPath, record } = await generateArcKey(dir, 'mm2026', 'mx.example.org');
  t.equal((await stat(keyPath)).mode & 0o777, 0o600);
  t.equal(record.name, 'mm2026._domainkey.mx.example.org.');
  const published = record.value.match(/^v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)$/)?.[1] ?? '';
  const own = createPublicKey(createPrivateKey(await readFile(keyPath, 'utf8'))).export({ type: 'spki', format: 'der' }).toString('base64');
  t.equal(published, own, 'the record publishes the key\'s public half');
  const strings = [...record.zoneLine.matchAll(/"([^"]*)"/g)].map((match) => match[1] ?? '');
  t.ok(strings.length > 1 && strings.every((text) => text.length <= 255), 'strings of at most 255 octets');
  t.equal(strings.join(''), record.value);
  await t.rejects(generateArcKey(dir, 'mm2026', 'mx.example.org'), /exists/, 'never overwritten');
  await t.rejects(generateArcKey(dir, 'bad selector', 'mx.example.org'), /not a DNS label/);
});

t.test('an Ed25519 key and its record: k=ed25519, p= the raw 32-byte public key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-keygen-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { keyPath, record } = await generateArcKey(dir, 'ed1', 'mx.example.org', 'ed25519');
  t.equal((await stat(keyPath)).mode & 0o777, 0o600);
  const key = createPrivateKey(await readFile(keyPath, 'utf8'));
  t.equal(key.asymmetricKeyType, 'ed25519');
  const published = Buffer.from(record.value.match(/^v=DKIM1; k=ed25519; p=([A-Za-z0-9+/=]+)$/)?.[1] ?? '', 'base64');
  t.equal(published.length, 32, '32 bytes');
  const x = createPublicKey(key).export({ format: 'jwk' }).x ?? '';
  t.equal(published.toString('base64url'), x, 'the public half of the key');
  t.equal(record.zoneLine, `ed1._domainkey.mx.example.org. IN TXT ( "${record.value}" )`, 'one string');
});

t.test('mailmoat arc keygen prints the record and the policy lines', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-keygen-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { stdout } = await run(process.execPath, [CLI, 'arc', 'keygen', '--out', dir, '--selector', 's1', '--domain', 'mx.example.org']);
  t.match(stdout, new RegExp(`^created ${join(dir, 's1.key')} `, 'm'));
  t.match(stdout, /^s1\._domainkey\.mx\.example\.org\. IN TXT \( "v=DKIM1; k=rsa; p=/m);
  t.match(stdout, /^policy: auth: \{ arc: \{ domain: mx\.example\.org, selector: s1, private_key: /m);
  const again = await run(process.execPath, [CLI, 'arc', 'keygen', '--out', dir, '--selector', 's1', '--domain', 'mx.example.org']).catch((error: { code: number; stderr: string }) => error);
  t.match(again, { code: 1, stderr: /exists/ });
  const { stdout: ed } = await run(process.execPath, [CLI, 'arc', 'keygen', '--out', dir, '--selector', 'e1', '--domain', 'mx.example.org', '--algorithm', 'ed25519']);
  t.match(ed, /^e1\._domainkey\.mx\.example\.org\. IN TXT \( "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=" \)$/m);
  const wrong = await run(process.execPath, [CLI, 'arc', 'keygen', '--out', dir, '--selector', 'e2', '--domain', 'mx.example.org', '--algorithm', 'dsa']).catch((error: { code: number; stderr: string }) => error);
  t.match(wrong, { code: 2, stderr: /Allowed choices are rsa, ed25519/ }, 'a usage error');
});

t.test('the policy: all of auth.arc or none, an IP resolver, an RSA or Ed25519 key', async (t) => {
  t.throws(() => parsePolicyText('auth:\n  arc:\n    domain: mx.example.org\n', 'x'), /domain, selector and private_key go together/);
  t.throws(() => parsePolicyText('auth:\n  resolver: dns.example.org:53\n', 'x'), /auth\.resolver: expected an IP address/);
  t.equal(parsePolicyText('auth:\n  resolver: "[::1]:5353"\n', 'x').auth.resolver, '[::1]:5353');
  t.equal(await createAuthenticator(parsePolicyText('', 'x')), undefined, 'no key: off');
  t.same(Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes('/mailauth/')), [], 'and mailauth is not even loaded');
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-keygen-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'ed.key'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  t.ok(await createAuthenticator(parsePolicyText('auth:\n  arc: { domain: mx.example.org, selector: s1, private_key: ed.key }\n', 'x', dir)), 'an Ed25519 key seals');
  await writeFile(join(dir, 'ec.key'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const policy = parsePolicyText('auth:\n  arc: { domain: mx.example.org, selector: s1, private_key: ec.key }\n', 'x', dir);
  await t.rejects(createAuthenticator(policy), /is a ec key: ARC seals with rsa-sha256 or ed25519-sha256/);
  await t.rejects(createAuthenticator(parsePolicyText('auth:\n  arc: { domain: mx.example.org, selector: s1, private_key: /nonexistent.key }\n', 'x')), /cannot read auth\.arc\.private_key/);
});
