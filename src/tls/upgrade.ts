/**
 * TLS on an existing connection, for either leg (RFC 3207 STARTTLS, RFC 2595
 * STLS, RFC 8314 implicit TLS): the downstream leg as a TLS server presenting a
 * leaf from our CA, the upstream leg as a TLS client that verifies the server
 * against the system roots plus `tls.upstream_ca`. TLS 1.2 is the minimum.
 *
 * Before a plain socket is wrapped, every byte it has buffered is discarded:
 * plaintext that arrived with the STARTTLS command must never be taken as part of
 * the TLS session (CVE-2011-0411, the STARTTLS command injection). Except at accept
 * on an implicit-TLS listener ('hand-over'): every byte is TLS from the first there,
 * and bytes read together with a PROXY protocol header are the client's ClientHello.
 */
import { connect as tlsConnect, createSecureContext, rootCertificates, TLSSocket, type SecureContext } from 'node:tls';
import { isIP, type Socket } from 'node:net';

export const MIN_TLS_VERSION = 'TLSv1.2';

/** What the proxy needs to do TLS on either leg. */
export interface TlsSetup {
  /** The leaf presented for a name (SNI, or the listener's default); undefined without a CA. */
  leafFor: ((name: string) => SecureContext) | undefined;
  /** Trusted roots for upstream certificates: the system's plus tls.upstream_ca. */
  upstreamRoots: readonly string[];
  /** The client context built from those roots, once (building it per handshake costs tens of ms). */
  upstreamContext: SecureContext;
  /** false: an upstream certificate that does not verify is accepted (and logged). */
  verifyUpstream: boolean;
}

export class TlsVerifyError extends Error {
  constructor(readonly host: string, readonly reason: string) {
    super(`the certificate of ${host} is not trusted: ${reason}`);
  }
}

/** Roots for upstream verification: Node's bundled roots plus the PEM certificates in `extraPem`. */
export function upstreamRoots(extraPem: string): string[] {
  const extra = extraPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return [...rootCertificates, ...extra];
}

/** The TLS client context for upstream handshakes, trusting `roots`. */
export function upstreamContext(roots: readonly string[]): SecureContext {
  return createSecureContext({ ca: [...roots], minVersion: MIN_TLS_VERSION });
}

/** Bytes the socket has read but nobody consumed yet: discarded, and their count returned. */
export function discardBuffered(socket: Socket): number {
  let discarded = 0;
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) discarded += chunk.length;
  return discarded;
}

function settle<T extends TLSSocket>(socket: T, event: 'secure' | 'secureConnect', timeoutSeconds: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TLS handshake not finished within ${timeoutSeconds} s`));
    }, timeoutSeconds * 1000);
    socket.once('error', (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
    socket.once(event, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/** The downstream leg: TLS server with a leaf for the client's SNI name, or for `defaultName`. */
export function acceptTls(socket: Socket, setup: TlsSetup, defaultName: string, timeoutSeconds: number, buffered: 'discard' | 'hand-over' = 'discard'): Promise<TLSSocket> {
  const leafFor = setup.leafFor;
  if (leafFor === undefined) return Promise.reject(new Error('no CA configured (tls.ca_cert, tls.ca_key)'));
  if (buffered === 'discard') discardBuffered(socket);
  const secure = new TLSSocket(socket, {
    isServer: true,
    secureContext: leafFor(defaultName),
    SNICallback: (servername, callback) => {
      try {
        callback(null, leafFor(servername || defaultName));
      } catch (error) {
        callback(error as Error);
      }
    },
  });
  return settle(secure, 'secure', timeoutSeconds);
}

/**
 * The upstream leg: TLS client to `host`, verified against the roots; SNI is sent for a
 * host name (RFC 6066 3: never for an address). Rejects with TlsVerifyError when the
 * certificate does not verify and the policy asks for verification.
 */
export async function connectTls(socket: Socket, host: string, setup: TlsSetup, timeoutSeconds: number): Promise<TLSSocket> {
  discardBuffered(socket);
  // Verification (chain and name: `host` is what the certificate must name) is judged below,
  // so that a failure is a clear refusal rather than a socket error.
  const secure = tlsConnect({
    socket,
    host,
    secureContext: setup.upstreamContext,
    minVersion: MIN_TLS_VERSION,
    rejectUnauthorized: false,
    ...(isIP(host) === 0 ? { servername: host } : {}),
  });
  await settle(secure, 'secureConnect', timeoutSeconds);
  if (setup.verifyUpstream && !secure.authorized) {
    secure.destroy();
    throw new TlsVerifyError(host, String(secure.authorizationError ?? 'not authorized'));
  }
  return secure;
}
