/**
 * Dials the real server for a session: a fixed host:port from the listener's
 * policy, with a connect timeout. Failures become the reply the downstream
 * receives (421 4.4.1, RFC 5321 3.8: the client retries later).
 */
import { connect, type Socket } from 'node:net';
import { REPLIES, ProxyError } from '../errors.js';
import type { HostPort } from '../config/schema.js';

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
