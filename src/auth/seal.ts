/**
 * ARC sealing (RFC 8617 5.1): the ARC-Authentication-Results, ARC-Message-Signature and
 * ARC-Seal of instance i over a message as it will be forwarded, signed with the policy's
 * key (rsa-sha256, relaxed/relaxed: the only algorithm RFC 8617 4.1.3 and its verifiers
 * know). The seal covers the earlier sets only when the chain passed (cv=pass); with cv=fail
 * it covers its own set alone (5.1.1).
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { sealMessage } from 'mailauth/lib/arc/index.js';
import type { MessageSource } from '../inspect/api.js';
import type { ChainValidation } from './verify.js';

export interface ArcKey {
  domain: string;
  selector: string;
  /** Parsed once (patches/ lets mailauth take a KeyObject: parsing the PEM for each of a seal's two signatures cost 2 ms). */
  privateKey: KeyObject;
}

/** Checks the PEM names an RSA private key; the message says what is wrong. */
export function parseArcKey(pem: string, path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new Error(`auth.arc.private_key ${path} is not a PEM private key: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new Error(`auth.arc.private_key ${path} is a ${key.asymmetricKeyType ?? 'unknown'} key: ARC seals with rsa-sha256 (RFC 8617), make one with mailmoat arc keygen`);
  }
  return key;
}

/** The three header fields, ARC-Seal first, each ending in CRLF. */
export async function arcSet(
  message: MessageSource,
  key: ArcKey,
  seal: { instance: number; cv: ChainValidation; authResults: string; time: Date },
): Promise<Buffer> {
  return sealMessage(Readable.from(message.open()), {
    i: seal.instance,
    cv: seal.cv,
    signingDomain: key.domain,
    selector: key.selector,
    privateKey: key.privateKey,
    algorithm: 'rsa-sha256',
    authResults: seal.authResults,
    signTime: seal.time,
  });
}
