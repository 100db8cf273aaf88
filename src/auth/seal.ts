/**
 * ARC sealing (RFC 8617 5.1): the ARC-Authentication-Results, ARC-Message-Signature and
 * ARC-Seal of instance i over a message as it will be forwarded, signed with the policy's key:
 * rsa-sha256 (RFC 8617 4.1.3, RFC 6376 3.3.1) or ed25519-sha256 (RFC 8463: Ed25519 over the
 * SHA-256 of the canonicalized data), both relaxed/relaxed. The seal covers the earlier sets
 * only when the chain passed (cv=pass); with cv=fail it covers its own set alone (5.1.1).
 * Signed here with node:crypto over the header block already read and one relaxed pass over
 * the body (canonical.ts): mailauth's sealer signed only rsa-sha256, parsed the header again
 * and hashed the body a second time in JavaScript.
 */
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import type { MessageSource } from '../inspect/api.js';
import { RelaxedBodyHash, relaxedHeader } from './canonical.js';
import { headerFields } from './results.js';
import type { ChainValidation } from './verify.js';

export type ArcAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface ArcKey {
  domain: string;
  selector: string;
  /** Parsed once, when the policy is loaded. */
  privateKey: KeyObject;
}

/**
 * The header fields the ARC-Message-Signature covers when present (RFC 8617 4.1.2 leaves the
 * choice to the sealer; these are mailauth's and RFC 6376 5.4.1's, plus DKIM-Signature). Never
 * ARC fields nor Authentication-Results, which later hops add or remove.
 */
const SIGNED_FIELDS = new Set(
  [
    'DKIM-Signature', 'Delivered-To', 'From', 'Sender', 'Reply-To', 'Subject', 'Date', 'Message-ID', 'To', 'Cc', 'MIME-Version', 'Content-Type',
    'Content-Transfer-Encoding', 'Content-ID', 'Content-Description', 'Resent-Date', 'Resent-From', 'Resent-Sender', 'Resent-To', 'Resent-Cc',
    'Resent-Message-ID', 'In-Reply-To', 'References', 'List-Id', 'List-Help', 'List-Unsubscribe', 'List-Subscribe', 'List-Post', 'List-Owner',
    'List-Archive', 'BIMI-Selector',
  ].map((name) => name.toLowerCase()),
);

/** Base64 of a signature, folded in pieces of this many characters. */
const SIGNATURE_FOLD_CHARS = 70;

const ARC_FIELDS = ['arc-authentication-results', 'arc-message-signature', 'arc-seal'] as const;

/** The algorithm a key signs with. */
export function arcAlgorithm(key: KeyObject): ArcAlgorithm {
  return key.asymmetricKeyType === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256';
}

/** Checks the PEM names an RSA or Ed25519 private key; the message says what is wrong. */
export function parseArcKey(pem: string, path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new Error(`auth.arc.private_key ${path} is not a PEM private key: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`auth.arc.private_key ${path} is a ${key.asymmetricKeyType ?? 'unknown'} key: ARC seals with rsa-sha256 or ed25519-sha256 (RFC 8617, RFC 8463), make one with mailmoat arc keygen`);
  }
  return key;
}

/** The relaxed body hash of `source` from `bodyStart` on (the byte after the empty line). */
export async function relaxedBodyHash(source: MessageSource, bodyStart: number): Promise<string> {
  const hash = new RelaxedBodyHash();
  let skip = bodyStart;
  for await (const chunk of source.open()) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    hash.update(skip === 0 ? chunk : chunk.subarray(skip));
    skip = 0;
  }
  return hash.digest();
}

function signature(key: KeyObject, canonical: string): string {
  const data = Buffer.from(canonical, 'latin1');
  const signed = key.asymmetricKeyType === 'ed25519' ? sign(null, createHash('sha256').update(data).digest(), key) : sign('sha256', data, key);
  return signed.toString('base64');
}

/** Folds `text` at the last `separator` before each `width` characters (a header line's length stays readable). */
function fold(text: string, separator: string, width: number): string {
  const lines: string[] = [];
  let rest = text;
  while (rest.length > width) {
    const cut = rest.lastIndexOf(separator, width);
    if (cut <= 0) break;
    lines.push(rest.slice(0, cut + separator.length));
    rest = rest.slice(cut + separator.length);
  }
  return [...lines, rest].join('\r\n\t');
}

/** `Name: line; line;` then the b= value (empty while signing), folded. Relaxed canonicalization reads any folding the same. */
const fieldText = (name: string, lines: readonly string[], b: string): string =>
  `${name}: ${lines.join(';\r\n\t')};\r\n\tb=${(b.match(new RegExp(`.{1,${SIGNATURE_FOLD_CHARS}}`, 'g')) ?? []).join('\r\n\t')}`;

/** The instance an ARC field's value names (its i= tag), or undefined. */
function instanceOf(field: string): number | undefined {
  for (const tag of field.slice(field.indexOf(':') + 1).split(';')) {
    const match = /^\s*i\s*=\s*(\d+)\s*$/.exec(tag);
    if (match?.[1] !== undefined) return Number(match[1]);
  }
  return undefined;
}

/** The earlier sets' fields in the order the seal covers them: instance 1's AAR, AMS, AS, then instance 2's... */
function chainFields(fields: readonly string[], below: number): string[] {
  const found = new Map<string, string>();
  for (const field of fields) {
    const name = field.slice(0, field.indexOf(':')).trim().toLowerCase();
    if (!(ARC_FIELDS as readonly string[]).includes(name)) continue;
    const instance = instanceOf(field);
    if (instance === undefined || instance >= below || found.has(`${instance} ${name}`)) continue;
    found.set(`${instance} ${name}`, field);
  }
  const ordered: string[] = [];
  for (let instance = 1; instance < below; instance++) {
    for (const name of ARC_FIELDS) {
      const field = found.get(`${instance} ${name}`);
      if (field !== undefined) ordered.push(field);
    }
  }
  return ordered;
}

/**
 * The three header fields, ARC-Seal first, each ending in CRLF, for the message whose header
 * block (every field, each ending in CRLF) is `header` and whose body hashes to `bodyHash`.
 */
export function arcSet(header: Buffer, bodyHash: string, key: ArcKey, seal: { instance: number; cv: ChainValidation; authResults: string; time: Date }): Buffer {
  const algorithm = arcAlgorithm(key.privateKey);
  const fields = headerFields(header).map((field) => field.toString('latin1'));
  const signed: string[] = [];
  for (let index = fields.length - 1; index >= 0; index--) {
    const field = fields[index] as string;
    const name = field.slice(0, field.indexOf(':')).trim();
    if (SIGNED_FIELDS.has(name.toLowerCase())) signed.push(field);
  }
  const t = Math.floor(seal.time.getTime() / 1000);
  const names = signed.map((field) => field.slice(0, field.indexOf(':')).trim()).join(':');
  const amsTags = [
    `i=${seal.instance}; a=${algorithm}; c=relaxed/relaxed; d=${key.domain}; s=${key.selector}; t=${t}`,
    `h=${fold(names, ':', SIGNATURE_FOLD_CHARS)}`,
    `bh=${bodyHash}`,
  ];
  const amsCanonical = [...signed.map((field) => `${relaxedHeader(field)}\r\n`), relaxedHeader(fieldText('ARC-Message-Signature', amsTags, ''))].join('');
  const ams = `${fieldText('ARC-Message-Signature', amsTags, signature(key.privateKey, amsCanonical))}\r\n`;
  const aar = `ARC-Authentication-Results: i=${seal.instance}; ${seal.authResults}\r\n`;
  const asTags = [`i=${seal.instance}; a=${algorithm}; t=${t}; cv=${seal.cv}; d=${key.domain}; s=${key.selector}`];
  const covered = [...(seal.cv === 'pass' ? chainFields(fields, seal.instance) : []), aar, ams];
  const asCanonical = [...covered.map((field) => `${relaxedHeader(field)}\r\n`), relaxedHeader(fieldText('ARC-Seal', asTags, ''))].join('');
  const as = `${fieldText('ARC-Seal', asTags, signature(key.privateKey, asCanonical))}\r\n`;
  return Buffer.from(as + ams + aar, 'latin1');
}
