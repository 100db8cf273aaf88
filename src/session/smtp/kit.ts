/** The SMTP protocol kit (session/protocol.ts): RFC 5321 421 refusals for accept/. */
import { REPLIES } from '../../errors.js';
import type { ProtocolKit, RefusalKind } from '../protocol.js';
import { serializeReply } from './replies.js';

const REFUSALS: Record<RefusalKind, Buffer> = {
  'proxy-header-required': serializeReply(REPLIES.proxyHeaderRequired),
  'too-many-sessions': serializeReply(REPLIES.tooManySessions),
  'routing-loop': serializeReply(REPLIES.routingLoop),
  'no-original-destination': serializeReply(REPLIES.noOriginalDestination),
};

export const smtpKit: ProtocolKit = {
  refusal: (kind) => REFUSALS[kind],
};
