/**
 * The fleet's admin token (`state.admin_token_file`): the bearer token (RFC 6750)
 * one node shows another's admin listener for a quarantined original. Compared in
 * constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A token shorter than this is refused as a policy mistake. */
const MIN_TOKEN_CHARS = 16;

/** The token in the file, or undefined when the policy names none. */
export function readAdminToken(file: string): string | undefined {
  if (file === '') return undefined;
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < MIN_TOKEN_CHARS) throw new Error(`state.admin_token_file ${file}: the token must have at least ${MIN_TOKEN_CHARS} characters`);
  return token;
}

/** Whether an Authorization header carries the token. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
  if (given === undefined) return false;
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(token));
}
