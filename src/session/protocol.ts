/**
 * What accept/ may know of a protocol: a kit per listener protocol. accept/ starts sessions
 * through the kit (create), and refuses a connection before any session exists (a limit,
 * a missing PROXY header, a routing loop) with the kit's last word in that protocol's own
 * syntax (RFC 5321 421 / RFC 1939 -ERR [SYS/TEMP] per RFC 2449); it never builds a reply itself.
 */
import { smtpKit } from './smtp/kit.js';
import { pop3Kit } from './pop3/kit.js';

/** Why a connection is refused before its session starts. */
export type RefusalKind = 'proxy-header-required' | 'too-many-sessions' | 'routing-loop' | 'no-original-destination';

export interface ProtocolKit<Options, Session> {
  /** The bytes that tell a refused downstream why, and when to come back. */
  refusal(kind: RefusalKind): Buffer;
  /** A session for one accepted connection, not yet started. */
  create(options: Options): Session;
}

export function protocolKit(protocol: 'smtp' | 'pop3'): Pick<ProtocolKit<unknown, unknown>, 'refusal'> {
  switch (protocol) {
    case 'smtp':
      return smtpKit;
    case 'pop3':
      return pop3Kit;
  }
}
