/**
 * The SMTP reply for a payload the proxy does not forward (session/payload.ts): RFC 5321
 * 4.2 reply classes, RFC 3463 enhanced codes. 4xx for what a later attempt may pass, 5xx
 * for what it will not; the inspector's own reason is the text of a policy decision.
 */
import { REPLIES, reply, type Reply } from '../../errors.js';
import type { RefusalCause, TempfailCause } from '../payload.js';

export function refusalReply(outcome: { kind: 'refuse'; cause: RefusalCause; reason: string } | { kind: 'tempfail'; cause: TempfailCause; reason: string }): Reply {
  if (outcome.kind === 'refuse') {
    switch (outcome.cause) {
      case 'too-big':
        return REPLIES.messageTooBig;
      case 'bare-line-endings':
        return REPLIES.bareLineEnding;
      case 'too-many-header-lines':
        return REPLIES.tooManyHeaderLines;
      case 'policy':
        return reply(554, `5.7.1 ${outcome.reason}`);
    }
  }
  switch (outcome.cause) {
    case 'spool':
      return REPLIES.spoolFailed;
    case 'peer-lost':
      return REPLIES.upstreamLostInData;
    case 'header-too-large':
      return REPLIES.headerBlockTooLarge;
    case 'inspector':
      return REPLIES.inspectionFailed;
    case 'quarantine':
      return REPLIES.quarantineFailed;
    case 'policy':
      return reply(451, `4.7.1 ${outcome.reason}`);
  }
}
