/**
 * Dials the real server for a session: a fixed host:port from the listener's
 * policy, with a connect timeout, and for implicit-TLS listeners (RFC 8314) a
 * verified TLS handshake on top. Failures become the reply the downstream
 * receives (421 4.4.1, RFC 5321 3.8: the client retries later; 421 4.7.0 for an
 * upstream certificate that does not verify).
 */
import { connect, type Socket } from 'node:net';
import { REPLIES, ProxyError } from '../errors.js';
import type { HostPort } from '../config/schema.js';
import { connectTls, TlsVerifyError, type TlsSetup } from '../tls/upgrade.js';

export function dialUpstream(address: HostPort, timeoutSeconds: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.host, port: address.port });
    const fail = (code: `MM_${string}`, cause?: Error): void => {
      socket.destroy();
      reject(new ProxyError(code, REPLIES.upstreamUnreachable, { cause }));
    };
    const timer = setTimeout(() => fail('MM_UPSTREAM_CONNECT_TIMEOUT'), timeoutSeconds * 1000);
    socket.once('error', (error) => {
      clearTimeout(timer);
      fail('MM_UPSTREAM_CONNECT', error);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/** Dials, then TLS from the first byte (ports 465, 995), verified against the setup's roots. */
export async function dialUpstreamTls(address: HostPort, connectSeconds: number, setup: TlsSetup, handshakeSeconds: number): Promise<Socket> {
  const raw = await dialUpstream(address, connectSeconds);
  try {
    return await connectTls(raw, address.host, setup, handshakeSeconds);
  } catch (error) {
    raw.destroy();
    if (error instanceof TlsVerifyError) throw new ProxyError('MM_UPSTREAM_UNTRUSTED', REPLIES.upstreamUntrusted, { cause: error });
    throw new ProxyError('MM_UPSTREAM_TLS', REPLIES.upstreamTlsFailed, { cause: error });
  }
}
