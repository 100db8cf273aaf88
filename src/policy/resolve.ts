/**
 * Policy resolution for one connection: the downstream's address decides the
 * direction (inside `networks.internal` = outbound, else inbound), and the
 * direction decides whether its mail is inspected (`inspect.smtp`); which servers
 * a POP3 `USER name#host` login may reach.
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are matched as IPv4.
 */
import { BlockList, isIPv4 } from 'node:net';
import type { Direction } from '../inspect/api.js';
import { parseHostPort, type HostPort, type ListenerPolicy, type Policy } from '../config/schema.js';
import { hostPattern } from './wildcard.js';

export interface DirectionResolver {
  directionOf(address: string): Direction;
}

/** Whether an address is in one of `ranges` (addresses or CIDR blocks). */
export function addressMatcher(ranges: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const range of ranges) {
    const [address = '', bits] = range.split('/');
    const family = isIPv4(address) ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return (address) => {
    const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)?.[1];
    const plain = mapped ?? address;
    return list.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6');
  };
}

export function directionResolver(internal: readonly string[]): DirectionResolver {
  const inside = addressMatcher(internal);
  return {
    directionOf: (address: string): Direction => (inside(address) ? 'outbound' : 'inbound'),
  };
}

export function inspectsSmtp(setting: Policy['inspect']['smtp'], direction: Direction): boolean {
  switch (setting) {
    case 'all':
      return true;
    case 'none':
      return false;
    case 'inbound':
      return direction === 'inbound';
    case 'outbound':
      return direction === 'outbound';
  }
}

/**
 * POP3 `upstream: from-username`: a login may reach a host only when it matches
 * `pop3.upstream_hosts` (wildcards) and a port in `pop3.upstream_ports`; an empty host
 * list refuses every such login (mailmoat is never an open proxy).
 */
export function pop3UpstreamAllowList(pop3: Policy['pop3']): (host: string, port: number) => boolean {
  const hosts = pop3.upstream_hosts.map(hostPattern);
  return (host, port) => pop3.upstream_ports.includes(port) && hosts.some((matches) => matches(host));
}

/**
 * What STARTTLS/STLS does on a listener: its own setting, else intercept when a CA is
 * configured and strip when not. An implicit-TLS listener is TLS already: strip.
 */
export function startTlsMode(listener: ListenerPolicy, policy: Readonly<Policy>): 'passthrough' | 'strip' | 'intercept' {
  if (listener.tls === 'implicit') return 'strip';
  return listener.starttls ?? (policy.tls.ca_cert === '' ? 'strip' : 'intercept');
}

/**
 * Where mailmoat submits mail of its own (released originals, alerts): `via` when given,
 * else the fixed upstream of the policy's first SMTP listener with one; undefined when there is none.
 */
export function submissionUpstream(policy: Readonly<Policy>, via = ''): HostPort | undefined {
  const text = via !== '' ? via : policy.listeners.find((listener) => listener.protocol === 'smtp' && parseHostPort(listener.upstream) !== undefined)?.upstream;
  return text === undefined ? undefined : parseHostPort(text);
}
