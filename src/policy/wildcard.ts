/**
 * Mailtraq-style wildcards (`*.exe`, `setup?.bin`, `*.example.com`) compiled to
 * anchored, case-insensitive regular expressions. Used by the executable list,
 * the allow-lists and the POP3 upstream host list.
 */
export function wildcardPattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'is');
}
