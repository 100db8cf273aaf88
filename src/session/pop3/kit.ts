/** The POP3 protocol kit (session/protocol.ts): RFC 2449 -ERR [SYS/TEMP] refusals for accept/. */
import type { ProtocolKit, RefusalKind } from '../protocol.js';
import { POP3_RESPONSES } from './responses.js';

const REFUSALS: Record<RefusalKind, Buffer> = {
  'proxy-header-required': POP3_RESPONSES.proxyHeaderRequired,
  'too-many-sessions': POP3_RESPONSES.tooManySessions,
  'routing-loop': POP3_RESPONSES.routingLoop,
  'no-original-destination': POP3_RESPONSES.noOriginalDestination,
};

export const pop3Kit: ProtocolKit = {
  refusal: (kind) => REFUSALS[kind],
};
