/**
 * POP3 responses: status indicators, the CAPA filter, and the responses the
 * proxy gives itself.
 *
 * RFC 1939 3 (+OK / -ERR status lines), RFC 2449 (CAPA; extended response codes
 * in brackets: [SYS/TEMP] tells the client the failure is transient and to retry,
 * [SYS/PERM] that it is not, [AUTH] that it concerns the credentials), RFC 5034 4
 * ("+ " continuation during AUTH).
 */

export type Status = 'ok' | 'err' | 'continue';

/** The status of an upstream response line; undefined for a line that is none of them. */
export function statusOf(line: Buffer): Status | undefined {
  if (line.length >= 3 && line.subarray(0, 3).toString('latin1') === '+OK' && (line.length === 3 || line[3] === 0x20)) return 'ok';
  if (line.length >= 4 && line.subarray(0, 4).toString('latin1') === '-ERR' && (line.length === 4 || line[4] === 0x20)) return 'err';
  if (line.length >= 1 && line[0] === 0x2b && (line.length === 1 || line[1] === 0x20)) return 'continue';
  return undefined;
}

/**
 * Capabilities the proxy does not relay as advertised: PIPELINING, because the proxy
 * handles one command at a time (a client that pipelines anyway is still served, in
 * order), and STLS unless the listener relays or intercepts it. Every other capability passes.
 */
export function filterCapabilities(lines: readonly Buffer[], offerStls: boolean): Buffer[] {
  return lines.filter((line) => {
    const keyword = line.toString('latin1').split(' ')[0]?.toUpperCase() ?? '';
    return keyword !== 'PIPELINING' && (keyword !== 'STLS' || offerStls);
  });
}

/** What the proxy advertises itself before `USER name#host` has chosen an upstream. */
export const PROXY_CAPABILITIES = ['USER', 'TOP', 'UIDL', 'RESP-CODES'];

/** Status text carries printable ASCII only (reasons may quote a sender's file name: no line injection). */
const statusText = (text: string): string => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 400);

export const ok = (text: string): Buffer => Buffer.from(`+OK ${statusText(text)}\r\n`, 'latin1');
export const err = (text: string): Buffer => Buffer.from(`-ERR ${statusText(text)}\r\n`, 'latin1');

/** The responses the proxy gives itself, one place for their wording. */
export const POP3_RESPONSES = {
  greeting: ok('mailmoat POP3 proxy ready, log in as USER name#host'),
  goodbye: ok('mailmoat POP3 proxy signing off'),
  capabilities: Buffer.from(`+OK Capability list follows\r\n${PROXY_CAPABILITIES.join('\r\n')}\r\n.\r\n`, 'latin1'),
  capabilitiesWithStls: Buffer.from(`+OK Capability list follows\r\n${[...PROXY_CAPABILITIES, 'STLS'].join('\r\n')}\r\n.\r\n`, 'latin1'),
  beginTls: ok('Begin TLS negotiation'),
  tlsAlreadyActive: err('TLS already active'),
  upstreamUntrusted: err('[SYS/TEMP] Upstream server certificate not trusted, try again later'),
  upstreamTlsFailed: err('[SYS/TEMP] TLS with the upstream server failed, try again later'),
  upstreamNoTls: err('[SYS/TEMP] Upstream server offers no TLS, try again later'),
  lineTooLong: err('Line too long'),
  unknownCommand: err('Unknown command'),
  invalidCommand: err('Invalid characters in command'),
  tooManyUnknown: err('Too many unrecognized commands, closing connection'),
  wrongState: err('Command not valid in this state'),
  tlsNotAvailable: err('STLS is not available'),
  needProxyLogin: err('Log in with USER name#host first'),
  badProxyLogin: err('[AUTH] Expected USER name#host or USER name#host:port'),
  upstreamNotAllowed: err('[AUTH] That server is not reachable through this proxy'),
  upstreamUnreachable: err('[SYS/TEMP] Upstream server unreachable, try again later'),
  upstreamLost: err('[SYS/TEMP] Upstream connection lost, try again later'),
  upstreamTimeout: err('[SYS/TEMP] Upstream server did not answer in time, try again later'),
  upstreamProtocolError: err('[SYS/TEMP] Upstream server spoke an invalid protocol, try again later'),
  idleTimeout: err('Autologout: idle for too long'),
  internalError: err('[SYS/TEMP] Internal proxy error, closing connection'),
  shuttingDown: err('[SYS/TEMP] mailmoat is shutting down, try again later'),
  tooManySessions: err('[SYS/TEMP] Too many connections, try again later'),
  proxyHeaderRequired: err('[SYS/TEMP] Connections here must come through the load balancer (PROXY protocol)'),
  routingLoop: err('[SYS/TEMP] Routing loop: this connection was addressed to the proxy itself'),
  noOriginalDestination: err('[SYS/TEMP] The proxy cannot tell where this connection was going, try again later'),
} as const satisfies Record<string, Buffer>;

/** A retrieval the proxy refuses; the message stays on the server (no DELE can follow a failed RETR). */
export const notInspected = (message: string, reason: string): Buffer =>
  err(`[SYS/TEMP] mailmoat could not inspect message ${message} (${reason}); it stays on the server, try again later`);
export const refusedByPolicy = (message: string, reason: string): Buffer => err(`[SYS/PERM] mailmoat refused message ${message} (${reason}); it stays on the server`);
export const tooBig = (message: string, limit: number): Buffer =>
  err(`[SYS/PERM] message ${message} is larger than mailmoat's limit of ${limit} bytes; it stays on the server`);
