/**
 * Authenticates a message as it arrived, before mailmoat changes it: every DKIM signature
 * (RFC 6376), any ARC chain (RFC 8617 5.2), and, when the client's address is known, SPF
 * (RFC 7208) and DMARC (RFC 7489), with mailauth. The answer is a list of RFC 8601 result
 * rows (`dkim=pass header.d=...`) and what the chain allows the sealer to do (RFC 8617 5.1).
 * DNS failures are results (temperror), never errors.
 */
import { Readable } from 'node:stream';
import { isIP } from 'node:net';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { spf } from 'mailauth/lib/spf/index.js';
import { dmarc } from 'mailauth/lib/dmarc/index.js';
import { arc } from 'mailauth/lib/arc/index.js';
import type { MessageSource } from '../inspect/api.js';
import type { Lookup } from './resolver.js';

/** RFC 8617 4.2.1: a chain has at most 50 ARC sets; a message at the limit is not sealed again. */
export const MAX_ARC_INSTANCES = 50;

export interface Envelope {
  /** MAIL FROM, with or without angle brackets ("" or "<>" for the null sender). */
  sender: string;
  /** Where the message came from, when known (SPF and DMARC need it). */
  client?: { address: string; helo: string };
}

export type ChainValidation = 'none' | 'pass' | 'fail';

export interface Authentication {
  /** RFC 8601 resinfo rows, in the order dkim..., spf, arc, dmarc. */
  results: string[];
  /** The incoming ARC chain's validation (RFC 8617 4.4) and its highest instance (0 without one). */
  chain: ChainValidation;
  instance: number;
  /** RFC 8617 5.1.2: may another ARC set be added (not when the chain's last seal already says fail, nor past 50 sets). */
  sealable: boolean;
}

const bare = (path: string): string => path.replace(/^<|>$/g, '');

/** `authservId` names this host in SPF's comments (RFC 8601 2.5). */
export async function authenticate(message: MessageSource, envelope: Envelope, lookup: Lookup, authservId: string): Promise<Authentication> {
  const sender = bare(envelope.sender);
  const dkim = await dkimVerify(Readable.from(message.open()), { resolver: lookup, ...(sender === '' ? {} : { sender }) });
  const results = dkim.results.map((row) => row.info);
  const client = envelope.client;
  let spfDomains: string[] = [];
  if (client !== undefined && isIP(client.address) !== 0) {
    const helo = client.helo === '' ? client.address : client.helo;
    const checked = await spf({ sender, ip: client.address, helo: isIP(helo) === 0 ? helo : `[${helo}]`, mta: authservId, resolver: lookup });
    if (checked) {
      results.push(checked.info);
      if (checked.status.result === 'pass') spfDomains = [checked.domain];
    }
  }
  const chain = await arc(dkim.arc, { resolver: lookup });
  if (chain.info !== undefined) results.push(chain.info);
  if (client !== undefined && Array.isArray(dkim.headerFrom) && dkim.headerFrom.length > 0) {
    const checked = await dmarc({
      headerFrom: dkim.headerFrom,
      spfDomains,
      dkimDomains: dkim.results
        .filter((row) => row.status.result === 'pass')
        .map((row) => ({ ...(row.signingDomain === undefined ? {} : { domain: row.signingDomain }), aligned: row.status.aligned ?? false, ...(row.status.underSized === undefined ? {} : { underSized: row.status.underSized }) })),
      arcResult: chain,
      resolver: lookup,
    });
    if (checked.info !== undefined) results.push(checked.info);
  }
  const instance = typeof chain.i === 'number' ? chain.i : 0;
  const status = chain.status.result;
  const sealable =
    instance < MAX_ARC_INSTANCES && (status === 'none' || status === 'pass' || (instance > 0 && chain.status.shouldSeal === true));
  return { results, chain: status, instance, sealable };
}
