/**
 * `mailmoat arc keygen`: a key for ARC sealing, RSA (RFC 8617 4.1.3: rsa-sha256; RFC 8301:
 * at least 1024 bits, 2048 by default here) or Ed25519 (RFC 8463: ed25519-sha256), and the
 * DNS TXT record that publishes its public half at <selector>._domainkey.<domain> (RFC 6376
 * 3.6.1, the DKIM key record format that ARC uses; RFC 8463 4: an Ed25519 key's p= is its
 * raw 32 bytes, not a SubjectPublicKeyInfo). An existing key is never overwritten.
 */
import { generateKeyPair } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const ARC_KEY_BITS = 2048;
export type ArcKeyAlgorithm = 'rsa' | 'ed25519';
/** An Ed25519 SubjectPublicKeyInfo (RFC 8410) is this prefix, then the 32-byte key. */
const ED25519_SPKI_PREFIX_BYTES = 12;
/** RFC 1035 3.3: one character-string of a TXT record holds at most 255 octets. */
const TXT_STRING_BYTES = 255;

export interface ArcKeyRecord {
  /** The owner name, with the trailing dot. */
  name: string;
  /** The record's text, `v=DKIM1; k=rsa; p=...` or `v=DKIM1; k=ed25519; p=...`. */
  value: string;
  /** A zone-file line, the value split into strings of at most 255 octets. */
  zoneLine: string;
}

/** The record publishing `publicKeyDer` (SubjectPublicKeyInfo, DER). */
export function arcKeyRecord(selector: string, domain: string, publicKeyDer: Buffer, algorithm: ArcKeyAlgorithm = 'rsa'): ArcKeyRecord {
  const name = `${selector}._domainkey.${domain.replace(/\.$/, '')}.`;
  const published = algorithm === 'ed25519' ? publicKeyDer.subarray(ED25519_SPKI_PREFIX_BYTES) : publicKeyDer;
  const value = `v=DKIM1; k=${algorithm}; p=${published.toString('base64')}`;
  const strings: string[] = [];
  for (let start = 0; start < value.length; start += TXT_STRING_BYTES) strings.push(`"${value.slice(start, start + TXT_STRING_BYTES)}"`);
  return { name, value, zoneLine: `${name} IN TXT ( ${strings.join(' ')} )` };
}

export interface GeneratedArcKey {
  keyPath: string;
  record: ArcKeyRecord;
}

/** Writes DIR/<selector>.key (PEM, mode 0600) and returns the record to publish. */
export async function generateArcKey(dir: string, selector: string, domain: string, algorithm: ArcKeyAlgorithm = 'rsa'): Promise<GeneratedArcKey> {
  if (!/^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/.test(selector)) throw new Error(`the selector "${selector}" is not a DNS label`);
  if (!/^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\.?$/.test(domain)) throw new Error(`the domain "${domain}" is not a domain name`);
  const { privateKey, publicKey } = algorithm === 'ed25519' ? await promisify(generateKeyPair)('ed25519') : await promisify(generateKeyPair)('rsa', { modulusLength: ARC_KEY_BITS });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keyPath = join(dir, `${selector}.key`);
  try {
    await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${keyPath} exists: choose another selector or folder (a published key is never overwritten)`);
    throw error;
  }
  return { keyPath, record: arcKeyRecord(selector, domain, publicKey.export({ type: 'spki', format: 'der' }), algorithm) };
}
