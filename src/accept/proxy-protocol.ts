/**
 * The HAProxy PROXY protocol, versions 1 and 2 (haproxy.org doc/proxy-protocol.txt),
 * on listeners with `proxy_protocol: true`: a load balancer in front of mailmoat
 * prefixes each connection with a header naming the real client, and that address,
 * not the load balancer's, decides direction and per-address limits.
 *
 * parseProxyHeader() is pure: given the first bytes, it answers with the header and its
 * length, or undefined while more bytes are needed, or throws ProxyHeaderError. The
 * first bytes decide: what cannot begin a v1 ("PROXY ") or v2 (12-byte signature)
 * header is refused at once. v1 is one line of at most 107 bytes; v2 is 16 bytes and
 * an address block of at most MAX_V2_ADDRESS_BYTES (TLVs are skipped). LOCAL (v2),
 * UNKNOWN (v1) and the UNSPEC and UNIX families (v2) carry no client address: the
 * connection's own addresses are used, as the specification requires.
 */
import { isIPv4, isIPv6, SocketAddress, type Socket } from 'node:net';

export interface Endpoint {
  address: string;
  port: number;
}

/** `source` undefined: a LOCAL/UNKNOWN header (a load balancer's health check); use the connection's own addresses. */
export interface ProxyHeader {
  version: 1 | 2;
  source?: Endpoint;
  destination?: Endpoint;
}

export type ProxyHeaderFailure = 'missing' | 'malformed' | 'too-long' | 'unsupported' | 'timeout' | 'closed';

export class ProxyHeaderError extends Error {
  override readonly name = 'ProxyHeaderError';
  constructor(
    readonly reason: ProxyHeaderFailure,
    message: string,
  ) {
    super(message);
  }
}

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** "PROXY TCP6 <39> <39> 65535 65535\r\n" is 104 bytes; the specification allows 107. */
export const MAX_V1_BYTES = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_BYTES = 16;
/** The address block and TLVs after the fixed part (216 for two UNIX paths, plus room for TLVs). */
export const MAX_V2_ADDRESS_BYTES = 1024;

/** Does `data` begin like `prefix` (as far as both go)? */
const beginsLike = (data: Buffer, prefix: Buffer): boolean => {
  const length = Math.min(data.length, prefix.length);
  return data.subarray(0, length).equals(prefix.subarray(0, length));
};

export function parseProxyHeader(data: Buffer): { header: ProxyHeader; length: number } | undefined {
  if (beginsLike(data, V2_SIGNATURE)) return data.length < V2_FIXED_BYTES ? undefined : parseV2(data);
  if (beginsLike(data, V1_PREFIX)) return parseV1(data);
  throw new ProxyHeaderError('missing', 'the connection did not begin with a PROXY protocol header');
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

function parseV1(data: Buffer): { header: ProxyHeader; length: number } | undefined {
  const end = data.subarray(0, MAX_V1_BYTES).indexOf('\r\n', 0, 'latin1');
  if (end === -1) {
    if (data.length >= MAX_V1_BYTES) throw new ProxyHeaderError('too-long', `a PROXY v1 header without CRLF in its first ${MAX_V1_BYTES} bytes`);
    return undefined;
  }
  const line = data.subarray(0, end).toString('latin1');
  const length = end + 2;
  const fields = line.split(' ');
  if (fields[1] === 'UNKNOWN') return { header: { version: 1 }, length };
  const malformed = (): ProxyHeaderError => new ProxyHeaderError('malformed', `a malformed PROXY v1 header: ${JSON.stringify(line.slice(0, 120))}`);
  if (fields.length !== 6) throw malformed();
  const [, family, sourceAddress = '', destinationAddress = '', sourcePortText = '', destinationPortText = ''] = fields;
  const valid = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : undefined;
  const sourcePort = parsePort(sourcePortText);
  const destinationPort = parsePort(destinationPortText);
  if (valid === undefined || !valid(sourceAddress) || !valid(destinationAddress) || sourcePort === undefined || destinationPort === undefined) throw malformed();
  const spelled = (address: string): string => (family === 'TCP6' ? canonicalIpv6(address) : address);
  return { header: { version: 1, source: { address: spelled(sourceAddress), port: sourcePort }, destination: { address: spelled(destinationAddress), port: destinationPort } }, length };
}

/** An IPv6 address as Node writes it (lower case, compressed, IPv4-mapped as ::ffff:a.b.c.d): one spelling per address, so per-address limits cannot be dodged. */
const canonicalIpv6 = (text: string): string => new SocketAddress({ address: text, family: 'ipv6' }).address;

/** 16 bytes as an IPv6 address. */
function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let offset = 0; offset < 16; offset += 2) groups.push(bytes.readUInt16BE(offset).toString(16));
  return canonicalIpv6(groups.join(':'));
}

function parseV2(data: Buffer): { header: ProxyHeader; length: number } | undefined {
  const versionCommand = data[12] ?? 0;
  const familyProtocol = data[13] ?? 0;
  const addressBytes = data.readUInt16BE(14);
  if (versionCommand >> 4 !== 2) throw new ProxyHeaderError('unsupported', `PROXY protocol version ${versionCommand >> 4} (only 1 and 2 exist)`);
  if (addressBytes > MAX_V2_ADDRESS_BYTES) throw new ProxyHeaderError('too-long', `a PROXY v2 address block of ${addressBytes} bytes (limit ${MAX_V2_ADDRESS_BYTES})`);
  const length = V2_FIXED_BYTES + addressBytes;
  if (data.length < length) return undefined;
  const command = versionCommand & 0x0f;
  if (command === 0x0) return { header: { version: 2 }, length }; // LOCAL: the load balancer's own connection
  if (command !== 0x1) throw new ProxyHeaderError('malformed', `PROXY v2 command ${command} (LOCAL is 0, PROXY 1)`);
  const family = familyProtocol >> 4;
  const transport = familyProtocol & 0x0f;
  if (family === 0x0 || family === 0x3) return { header: { version: 2 }, length }; // UNSPEC, UNIX: no client address
  if (transport !== 0x1) throw new ProxyHeaderError('unsupported', `PROXY v2 transport ${transport} (only STREAM carries SMTP or POP3)`);
  const block = data.subarray(V2_FIXED_BYTES, length);
  if (family === 0x1 && addressBytes >= 12) {
    const ip = (offset: number): string => [...block.subarray(offset, offset + 4)].join('.');
    return { header: { version: 2, source: { address: ip(0), port: block.readUInt16BE(8) }, destination: { address: ip(4), port: block.readUInt16BE(10) } }, length };
  }
  if (family === 0x2 && addressBytes >= 36) {
    return {
      header: { version: 2, source: { address: ipv6Text(block.subarray(0, 16)), port: block.readUInt16BE(32) }, destination: { address: ipv6Text(block.subarray(16, 32)), port: block.readUInt16BE(34) } },
      length,
    };
  }
  throw new ProxyHeaderError('malformed', `a PROXY v2 header with family ${family} and an address block of ${addressBytes} bytes`);
}

/**
 * Reads the header off `socket` before anyone else reads from it. Bytes after the
 * header are put back (unshift) and the socket is left paused: the session that
 * reads next resumes it.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    const settle = (outcome: { header: ProxyHeader; rest: Buffer } | ProxyHeaderError): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onClosed);
      socket.off('close', onClosed);
      socket.pause();
      if (outcome instanceof ProxyHeaderError) return reject(outcome);
      if (outcome.rest.length > 0) socket.unshift(outcome.rest);
      resolve(outcome.header);
    };
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      try {
        const parsed = parseProxyHeader(received);
        if (parsed !== undefined) settle({ header: parsed.header, rest: received.subarray(parsed.length) });
      } catch (error) {
        settle(error instanceof ProxyHeaderError ? error : new ProxyHeaderError('malformed', (error as Error).message));
      }
    };
    const onClosed = (): void => settle(new ProxyHeaderError('closed', `the connection closed after ${received.length} bytes, before a complete PROXY protocol header`));
    const timer = setTimeout(() => settle(new ProxyHeaderError('timeout', `no complete PROXY protocol header within ${timeoutMs / 1000} s`)), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onClosed);
    socket.once('close', onClosed);
  });
}
