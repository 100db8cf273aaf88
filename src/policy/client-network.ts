/**
 * The network a downstream address stands for, when counting or remembering clients:
 * an IPv4 address is itself (an IPv4-mapped IPv6 address `::ffff:a.b.c.d` is the IPv4
 * address it maps, RFC 4291 2.5.5.2); an IPv6 address stands for its /64 (RFC 4291
 * 2.5.4: one subnet, which one host commonly holds whole, so per-address counts
 * would otherwise be free to multiply). The result is a canonical text key.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The IPv6 prefix a client is counted by, unless configured otherwise. */
export const DEFAULT_IPV6_CLIENT_PREFIX_BITS = 64;

export function clientNetwork(address: string, ipv6PrefixBits = DEFAULT_IPV6_CLIENT_PREFIX_BITS): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped !== null && isIPv4(mapped[1] ?? '')) return mapped[1] ?? address;
  if (isIPv4(address)) return address;
  const groups = ipv6Groups(address);
  if (groups === undefined) return address;
  const bits = Math.max(0, Math.min(128, ipv6PrefixBits));
  const masked = groups.map((group, index) => {
    const keep = Math.max(0, Math.min(16, bits - index * 16));
    return keep === 0 ? 0 : group & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${masked.map((group) => group.toString(16)).join(':')}/${bits}`;
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a zone or an embedded IPv4 tail handled), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  const plain = address.replace(/%.*$/, '');
  if (!isIPv6(plain)) return undefined;
  let text = plain;
  const tail = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (tail !== null) {
    const [a, b, c, d] = (tail[1] ?? '').split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const middle = rest === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  const groups = [...left, ...middle, ...right].map((group) => Number.parseInt(group, 16));
  return groups.length === 8 && groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff) ? groups : undefined;
}
