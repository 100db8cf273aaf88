/**
 * Mailtraq-style wildcards (`*.exe`, `setup?.bin`, `*.example.com`) compiled to
 * anchored, case-insensitive regular expressions. Used by the executable list,
 * the allow-lists and the POP3 upstream host list.
 *
 * A host pattern made of an address's characters only (`10.0.0.*`, `192.0.2.1?`,
 * `2001:db8::*`) matches IP literals only: never a DNS name that begins like one
 * (`10.0.0.1.nip.io` resolves wherever its owner wants).
 */
import { isIP } from 'node:net';

const IP_PATTERN = /^(?=.*[0-9:])(?:[0-9.*?]+|[0-9a-f:.*?]*:[0-9a-f:.*?]*)$/i;
export function wildcardPattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'is');
}

/** A host wildcard: an IP-like pattern matches IP literals only; a name pattern matches names and literals as written. */
export function hostPattern(pattern: string): (host: string) => boolean {
  const regex = wildcardPattern(pattern);
  if (!IP_PATTERN.test(pattern)) return (host) => regex.test(host);
  return (host) => isIP(host) !== 0 && regex.test(host);
}
