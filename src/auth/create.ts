/**
 * Builds the authenticator a policy's `auth` section describes, or none when no ARC key
 * is configured (then rewritten mail is forwarded as the rewrite left it, and mailauth is
 * never loaded).
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Policy } from '../config/schema.js';
import type { AuthenticationEvent, MessageAuthenticator } from './authenticator.js';

export async function createAuthenticator(policy: Readonly<Policy>, onAuthenticated?: (event: AuthenticationEvent) => void): Promise<MessageAuthenticator | undefined> {
  const { auth } = policy;
  if (auth.arc.private_key === '') return undefined;
  let pem: string;
  try {
    pem = await readFile(auth.arc.private_key, 'utf8');
  } catch (error) {
    throw new Error(`cannot read auth.arc.private_key ${auth.arc.private_key}: ${(error as Error).message}`);
  }
  // mailauth and its dependencies load only when a key is configured: they added about a quarter
  // of a second to every start, for a feature that is off by default.
  const [{ MessageAuthenticator: Authenticator }, { parseArcKey }] = await Promise.all([import('./authenticator.js'), import('./seal.js')]);
  const privateKey = parseArcKey(pem, auth.arc.private_key);
  return new Authenticator(
    {
      authservId: auth.authserv_id || hostname(),
      arc: { domain: auth.arc.domain, selector: auth.arc.selector, privateKey },
      resolver: { server: auth.resolver === '' ? undefined : auth.resolver, budgetMs: auth.dns_budget_ms },
      sealOutbound: auth.seal_outbound,
      maxHeaderBytes: policy.limits.max_mime_header_bytes,
    },
    onAuthenticated,
  );
}
