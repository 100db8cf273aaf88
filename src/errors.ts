/**
 * Error catalog: every failure the proxy can meet carries a stable code and the
 * reply the downstream receives for it (RFC 5321 4.2 reply codes, RFC 3463
 * enhanced status codes). Code paths choose an outcome here, never an ad hoc string.
 */

export interface Reply {
  code: number;
  /** Text lines without the code; one element for a single-line reply. */
  lines: string[];
}

export const reply = (code: number, ...lines: string[]): Reply => ({ code, lines });

export const REPLIES = {
  upstreamUnreachable: reply(421, '4.4.1 Upstream server unreachable, try again later'),
  upstreamGreetingTimeout: reply(421, '4.4.1 Upstream server did not greet in time, try again later'),
  upstreamLost: reply(421, '4.4.2 Upstream connection lost, try again later'),
  upstreamLostInData: reply(451, '4.4.2 Upstream connection lost, message not accepted, try again later'),
  upstreamReplyTimeout: reply(421, '4.4.2 Upstream server did not answer in time, try again later'),
  upstreamFinalTimeout: reply(451, '4.4.2 Upstream server did not confirm the message in time, try again later'),
  upstreamProtocolError: reply(421, '4.4.2 Upstream server spoke an invalid protocol, try again later'),
  upstreamUnexpectedReply: reply(451, '4.3.0 Upstream server answered unexpectedly, try again later'),
  earlyTalker: reply(421, '4.7.0 Protocol violation: data sent before the greeting'),
  httpRequest: reply(421, '4.7.0 This is an SMTP service, not HTTP'),
  tooManyUnknown: reply(421, '4.7.0 Too many unrecognized commands, closing connection'),
  tooManySessions: reply(421, '4.7.0 Too many connections, try again later'),
  proxyHeaderRequired: reply(421, '4.7.0 Connections here must come through the load balancer (PROXY protocol)'),
  routingLoop: reply(421, '4.4.6 Routing loop: this connection was addressed to the proxy itself'),
  noOriginalDestination: reply(421, '4.4.0 The proxy cannot tell where this connection was going, try again later'),
  dataTooSlow: reply(421, '4.4.2 Data arriving too slowly, closing connection'),
  tooManyHeaderLines: reply(554, '5.6.0 Message refused: too many header lines'),
  headerBlockTooLarge: reply(451, '4.7.1 Message header block too large (limits.max_mime_header_bytes)'),
  commandTimeout: reply(421, '4.4.2 Idle timeout, closing connection'),
  dataTimeout: reply(421, '4.4.2 Timeout while receiving message data, closing connection'),
  lineTooLong: reply(500, '5.5.2 Line too long'),
  invalidCharacters: reply(500, '5.5.2 Invalid characters in command'),
  unknownCommand: reply(500, '5.5.2 Command unrecognized'),
  notImplemented: reply(502, '5.5.1 Command not implemented'),
  chunkingRefused: reply(502, '5.5.1 BDAT is not supported, use DATA'),
  xclientRefused: reply(502, '5.5.1 Command refused by the proxy'),
  xforwardAccepted: reply(250, '2.0.0 Ok'),
  xforwardInTransaction: reply(503, '5.5.1 Mail transaction in progress'),
  /** A client forwarded by XFORWARD is over a per-address limit: this message waits in the peer's queue. */
  forwardedClientLimited: reply(451, '4.7.0 Too many messages from this client, try again later'),
  tlsNotAvailable: reply(454, '4.7.0 TLS not available'),
  tlsAlreadyActive: reply(503, '5.5.1 TLS already active'),
  readyToStartTls: reply(220, '2.0.0 Ready to start TLS'),
  upstreamUntrusted: reply(421, '4.7.0 Upstream server certificate not trusted, try again later'),
  upstreamTlsFailed: reply(421, '4.7.0 TLS with the upstream server failed, try again later'),
  needMail: reply(503, '5.5.1 Error: need MAIL command'),
  noValidRecipients: reply(554, '5.5.1 Error: no valid recipients'),
  startData: reply(354, 'End data with <CR><LF>.<CR><LF>'),
  messageTooBig: reply(552, '5.3.4 Message size exceeds fixed limit'),
  largeMessageRemembered: reply(552, '5.3.4 Message size exceeds fixed limit; this message was cut off before and is not accepted again'),
  bareLineEnding: reply(550, '5.6.0 Message refused: bare CR or LF line endings'),
  inspectionFailed: reply(451, '4.3.0 Message could not be inspected, try again later'),
  spoolFailed: reply(451, '4.3.0 Local storage error, try again later'),
  memoryBudget: reply(451, '4.3.1 Insufficient system resources, try again later'),
  quarantineFailed: reply(451, '4.3.0 Quarantine storage error, try again later'),
  internalError: reply(421, '4.3.0 Internal proxy error, closing connection'),
  shuttingDown: reply(421, '4.3.2 Service shutting down, try again later'),
  brokenSession: reply(421, '4.4.2 Upstream connection lost, closing connection'),
  goodbye: reply(221, '2.0.0 Bye'),
} as const satisfies Record<string, Reply>;

export class ProxyError extends Error {
  constructor(
    readonly code: `MM_${string}`,
    readonly reply: Reply,
    options?: ErrorOptions,
  ) {
    super(`${reply.code} ${reply.lines.join(' ')}`, options);
  }
}
