/**
 * The POP3 protocol kit (session/protocol.ts): how accept/ starts a POP3 session, and the
 * RFC 2449 -ERR [SYS/TEMP] refusals it sends when it will not start one.
 */
import type { ProtocolKit, RefusalKind } from '../protocol.js';
import { POP3_RESPONSES } from './responses.js';
import { Pop3Session, type Pop3SessionOptions } from './session.js';

export type { Pop3Session, Pop3SessionOptions } from './session.js';

const REFUSALS: Record<RefusalKind, Buffer> = {
  'proxy-header-required': POP3_RESPONSES.proxyHeaderRequired,
  'too-many-sessions': POP3_RESPONSES.tooManySessions,
  'routing-loop': POP3_RESPONSES.routingLoop,
  'no-original-destination': POP3_RESPONSES.noOriginalDestination,
};

export const pop3Kit: ProtocolKit<Pop3SessionOptions, Pop3Session> = {
  refusal: (kind) => REFUSALS[kind],
  create: (options) => new Pop3Session(options),
};
