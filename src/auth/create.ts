/**
 * Builds the authenticator a policy's `auth` section describes, or none when no ARC key
 * is configured (then rewritten mail is forwarded as the rewrite left it).
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Policy } from '../config/schema.js';
import { MessageAuthenticator, type AuthenticationEvent } from './authenticator.js';
import { parseArcKey } from './seal.js';

export async function createAuthenticator(policy: Readonly<Policy>, onAuthenticated?: (event: AuthenticationEvent) => void): Promise<MessageAuthenticator | undefined> {
  const { auth } = policy;
  if (auth.arc.private_key === '') return undefined;
  let pem: string;
  try {
    pem = await readFile(auth.arc.private_key, 'utf8');
  } catch (error) {
    throw new Error(`cannot read auth.arc.private_key ${auth.arc.private_key}: ${(error as Error).message}`);
  }
  const privateKey = parseArcKey(pem, auth.arc.private_key);
  return new MessageAuthenticator(
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
