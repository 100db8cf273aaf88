/**
 * Builds the TLS collaborators a policy describes, once at start: the leaf issuer
 * (when tls.ca_cert and tls.ca_key name a CA), the roots that upstream
 * certificates are verified against (the system's plus tls.upstream_ca), and
 * whether a failed verification refuses the session.
 */
import { readFile } from 'node:fs/promises';
import type { Policy } from '../config/schema.js';
import { LeafIssuer } from './ca.js';
import { upstreamContext, upstreamRoots, type TlsSetup } from './upgrade.js';

export async function createTlsSetup(policy: Readonly<Policy>): Promise<TlsSetup> {
  const { tls } = policy;
  const issuer = tls.ca_cert === '' ? undefined : await LeafIssuer.load(tls.ca_cert, tls.ca_key, tls.leaf_validity_hours);
  let extraRoots = '';
  if (tls.upstream_ca !== '') {
    try {
      extraRoots = await readFile(tls.upstream_ca, 'utf8');
    } catch (error) {
      throw new Error(`cannot read tls.upstream_ca ${tls.upstream_ca}: ${(error as Error).message}`);
    }
    if (!extraRoots.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`tls.upstream_ca ${tls.upstream_ca} holds no PEM certificate`);
  }
  const roots = upstreamRoots(extraRoots);
  return {
    leafFor: issuer === undefined ? undefined : (name) => issuer.contextFor(name),
    upstreamRoots: roots,
    upstreamContext: upstreamContext(roots),
    verifyUpstream: tls.upstream_verify,
  };
}
