/**
 * The SMTP protocol kit (session/protocol.ts): how accept/ starts an SMTP session, and the
 * RFC 5321 421 refusals it sends when it will not start one.
 */
import { REPLIES } from '../../errors.js';
import type { ProtocolKit, RefusalKind } from '../protocol.js';
import { serializeReply } from './replies.js';
import { SmtpSession, type SmtpSessionOptions } from './session.js';

export type { LargeMessageSafety, SmtpSession, SmtpSessionOptions } from './session.js';
export type { XforwardTrust } from './xforward.js';

const REFUSALS: Record<RefusalKind, Buffer> = {
  'proxy-header-required': serializeReply(REPLIES.proxyHeaderRequired),
  'too-many-sessions': serializeReply(REPLIES.tooManySessions),
  'routing-loop': serializeReply(REPLIES.routingLoop),
  'no-original-destination': serializeReply(REPLIES.noOriginalDestination),
};

export const smtpKit: ProtocolKit<SmtpSessionOptions, SmtpSession> = {
  refusal: (kind) => REFUSALS[kind],
  create: (options) => new SmtpSession(options),
};
