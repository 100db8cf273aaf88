/**
 * The POP3 response for a retrieval the proxy will not hand over (session/payload.ts):
 * RFC 2449 8 response codes, [SYS/TEMP] when a later RETR may succeed, [SYS/PERM] when
 * it will not. The message always stays on the server.
 */
import type { RefusalCause, TempfailCause } from '../payload.js';
import { notInspected, refusedByPolicy, tooBig } from './responses.js';

export function refusalResponse(
  outcome: { kind: 'refuse'; cause: RefusalCause; reason: string } | { kind: 'tempfail'; cause: TempfailCause; reason: string },
  message: string,
  limitBytes: number,
): Buffer {
  if (outcome.kind === 'refuse') {
    switch (outcome.cause) {
      case 'too-big':
        return tooBig(message, limitBytes);
      case 'bare-line-endings':
      case 'too-many-header-lines':
      case 'policy':
        return refusedByPolicy(message, outcome.reason);
    }
  }
  switch (outcome.cause) {
    case 'spool':
      return notInspected(message, 'local storage error');
    case 'inspector':
      return notInspected(message, 'inspector failed');
    case 'quarantine':
      return notInspected(message, 'quarantine storage error');
    case 'peer-lost':
    case 'header-too-large':
    case 'policy':
      return notInspected(message, outcome.reason);
  }
}
