/**
 * `upstream: original-destination`: where a transparently intercepted connection was going
 * before the firewall redirected it to the proxy. Linux keeps that address in conntrack and
 * gives it out through getsockopt(SOL_IP, SO_ORIGINAL_DST) (IPv4) and
 * getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST) (IPv6); Node has no binding for either, so the
 * tiny Node-API addon in native/ (built by `npm run build:addon`) reads it from the socket's fd.
 *
 * The answer is only trusted when it points elsewhere:
 * - ENOENT (no conntrack entry: the connection was not NATed, or this network namespace has no
 *   nat table) → reason 'no-nat-table';
 * - an original destination equal to the socket's own local address and port (a connection
 *   made straight to the proxy, or REDIRECTed to where it already was) → 'not-redirected';
 * - an original destination that is one of the proxy's own listening addresses → 'loop'
 *   (dialling it would connect the proxy to itself); the listener refuses it with 421;
 * - no addon, no fd, or any other errno → 'unavailable'.
 */
import { createRequire } from 'node:module';
import { isIP, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.js';

export interface Destination {
  host: string;
  port: number;
}

export type OriginalDestinationFailure = 'not-redirected' | 'no-nat-table' | 'loop' | 'unavailable';

export class OriginalDestinationError extends Error {
  override readonly name = 'OriginalDestinationError';
  /** The errno name from getsockopt/getsockname (ENOENT, ENOPROTOOPT, ...), when there was one. */
  readonly code: string | undefined;
  /** What the kernel answered, for 'not-redirected' and 'loop'. */
  readonly destination: Destination | undefined;

  constructor(
    readonly reason: OriginalDestinationFailure,
    message: string,
    details: { code?: string | undefined; destination?: Destination; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = details.code;
    this.destination = details.destination;
  }
}

/** The built addon (native/original_dst.c). */
export const ADDON_PATH = join(PACKAGE_ROOT, 'native', 'build', 'Release', 'original_dst.node');

interface RawOriginalDestination {
  address: string;
  port: number;
  family: 4 | 6;
}
interface Addon {
  originalDestination(fd: number): RawOriginalDestination;
}
/** The part of net.Socket's private libuv handle read here: the file descriptor. */
interface SocketWithHandle {
  _handle?: { fd?: unknown } | null;
}

let addon: Addon | Error | undefined;

function loadAddon(): Addon {
  if (addon === undefined) {
    try {
      const loaded: unknown = createRequire(import.meta.url)(ADDON_PATH);
      if (typeof loaded !== 'object' || loaded === null || typeof (loaded as Partial<Addon>).originalDestination !== 'function') {
        throw new Error(`${ADDON_PATH} does not export originalDestination()`);
      }
      addon = loaded as Addon;
    } catch (error) {
      addon = error instanceof Error ? error : new Error(String(error));
    }
  }
  if (addon instanceof Error) {
    throw new OriginalDestinationError(
      'unavailable',
      `the SO_ORIGINAL_DST addon cannot be loaded (${addon.message}); build it with \`npm run build:addon\``,
      { cause: addon },
    );
  }
  return addon;
}

/** Throws OriginalDestinationError ('unavailable') when the addon cannot be loaded: checked at start and by `mailmoat check`. */
export function requireAddon(): void {
  loadAddon();
}

/** Lower-case, no zone id, IPv4-mapped IPv6 (::ffff:a.b.c.d) written as IPv4. */
function normalizeHost(host: string): string {
  const bare = host.toLowerCase().replace(/%.*$/, '').replace(/^\[(.*)\]$/, '$1');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  return mapped?.[1] ?? bare;
}

const sameHost = (a: string, b: string): boolean => normalizeHost(a) === normalizeHost(b);

function isWildcard(host: string): boolean {
  const h = normalizeHost(host);
  return h === '' || h === '0.0.0.0' || h === '::';
}

function isLoopback(host: string): boolean {
  const h = normalizeHost(host);
  return h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

function machineAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address));
}

/**
 * Loop protection: is `destination` one of the proxy's own listening addresses? A wildcard
 * listener (0.0.0.0, ::, or no host) owns its port on every address of this machine
 * (`localAddresses`, by default those of os.networkInterfaces(), plus loopback). They are
 * read only when a wildcard listener's port matches, at most once per call.
 */
export function isOwnListeningAddress(
  destination: Destination,
  listeningAddresses: readonly Destination[],
  localAddresses: () => readonly string[] = machineAddresses,
): boolean {
  let locals: readonly string[] | undefined;
  return listeningAddresses.some((listening) => {
    if (listening.port !== destination.port) return false;
    if (!isWildcard(listening.host)) return sameHost(listening.host, destination.host);
    if (isWildcard(destination.host) || isLoopback(destination.host)) return true;
    locals ??= localAddresses();
    return locals.some((local) => sameHost(local, destination.host));
  });
}

/**
 * The address `socket` (an accepted, NAT-redirected connection) was originally sent to.
 * With `listeningAddresses`, an answer naming one of them throws reason 'loop'.
 * Throws OriginalDestinationError (see the header for the reasons); never returns the
 * socket's own address.
 */
export function originalDestination(socket: Socket, listeningAddresses: readonly Destination[] = []): Destination {
  const native = loadAddon();
  const fd = (socket as unknown as SocketWithHandle)._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new OriginalDestinationError('unavailable', 'the connection has no file descriptor (closed, or not a TCP socket) to read SO_ORIGINAL_DST from');
  }

  let raw: RawOriginalDestination;
  try {
    raw = native.originalDestination(fd);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new OriginalDestinationError(
        'no-nat-table',
        'getsockopt(SO_ORIGINAL_DST) failed with ENOENT: the connection was not redirected by iptables/nftables NAT, or the nat table is missing in this network namespace',
        { code, cause: error },
      );
    }
    const detail = error instanceof Error ? error.message : String(error);
    throw new OriginalDestinationError('unavailable', `cannot read the original destination: ${detail}`, { code, cause: error });
  }

  const destination: Destination = { host: raw.address, port: raw.port };
  if (socket.localAddress !== undefined && sameHost(socket.localAddress, raw.address) && socket.localPort === raw.port) {
    throw new OriginalDestinationError(
      'not-redirected',
      `the original destination ${formatDestination(destination)} is the connection's own local address: it was not redirected by NAT (a client connected to the proxy directly)`,
      { destination },
    );
  }
  if (isOwnListeningAddress(destination, listeningAddresses)) {
    throw new OriginalDestinationError(
      'loop',
      `the original destination ${formatDestination(destination)} is one of the proxy's own listening addresses: relaying there would connect the proxy to itself`,
      { destination },
    );
  }
  return destination;
}

export function formatDestination(destination: Destination): string {
  return isIP(destination.host) === 6 ? `[${destination.host}]:${destination.port}` : `${destination.host}:${destination.port}`;
}
