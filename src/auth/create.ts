/**
 * Builds the authenticator a policy's `auth` section describes, or none when neither an ARC
 * key is configured nor Authentication-Results on every message asked for (then rewritten
 * mail is forwarded as the rewrite left it, and mailauth is never loaded).
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Policy } from '../config/schema.js';
import type { AuthenticationEvent, MessageAuthenticator } from './authenticator.js';

export async function createAuthenticator(policy: Readonly<Policy>, onAuthenticated?: (event: AuthenticationEvent) => void): Promise<MessageAuthenticator | undefined> {
  const { auth } = policy;
  if (auth.arc.private_key === '' && !auth.results_on_every_message) return undefined;
  let pem: string | undefined;
  try {
    pem = auth.arc.private_key === '' ? undefined : await readFile(auth.arc.private_key, 'utf8');
  } catch (error) {
    throw new Error(`cannot read auth.arc.private_key ${auth.arc.private_key}: ${(error as Error).message}`);
  }
  // mailauth and its dependencies load only when auth is configured: they added about a quarter
  // of a second to every start, for a feature that is off by default.
  const [{ MessageAuthenticator: Authenticator }, { parseArcKey }] = await Promise.all([import('./authenticator.js'), import('./seal.js')]);
  return new Authenticator(
    {
      authservId: auth.authserv_id || hostname(),
      ...(pem === undefined ? {} : { arc: { domain: auth.arc.domain, selector: auth.arc.selector, privateKey: parseArcKey(pem, auth.arc.private_key) } }),
      resultsOnEveryMessage: auth.results_on_every_message,
      resolver: { server: auth.resolver === '' ? undefined : auth.resolver, budgetMs: auth.dns_budget_ms },
      dnsCacheSeconds: auth.dns_cache_seconds,
      sealOutbound: auth.seal_outbound,
      maxHeaderBytes: policy.limits.max_mime_header_bytes,
    },
    onAuthenticated,
  );
}
