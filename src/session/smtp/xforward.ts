/**
 * XFORWARD (Postfix XFORWARD_README): a trusted peer in front of mailmoat (a
 * Postfix `content_filter` or `smtpd_proxy_filter`) forwards the attributes of
 * the client it received the mail from, so that client's address, not the
 * peer's, decides the direction, the per-address limits and what is logged.
 *
 * Attribute values are xtext (RFC 3461 4, formerly RFC 1891); `[UNAVAILABLE]`
 * (any case) marks an unknown value; ADDR carries IPv6 as `IPV6:addr`. The first
 * XFORWARD of a transaction sets every attribute to unavailable, later ones
 * update them; all are forgotten at the end of the mail transaction (the reply to
 * the final dot, RSET, or a new EHLO/HELO). Only peers in `smtp.xforward_from`
 * may send it; from anyone else it is refused, as XCLIENT is.
 */
import { isIP } from 'node:net';
import type { Direction } from '../../inspect/api.js';
import type { Reply } from '../../errors.js';
import type { Admission } from '../../accept/admission.js';

export const XFORWARD_ATTRIBUTES = ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'IDENT', 'SOURCE'] as const;
export type XforwardAttribute = (typeof XFORWARD_ATTRIBUTES)[number];

/** XFORWARD_README note 1: no value may be longer than this (before decoding). */
export const MAX_XFORWARD_VALUE_BYTES = 255;
/** The EHLO line offered to a trusted peer: every attribute is accepted. */
export const XFORWARD_CAPABILITY = `XFORWARD ${XFORWARD_ATTRIBUTES.join(' ')}`;

const UNAVAILABLE = '[UNAVAILABLE]';

/** What a session of a trusted peer decides from a forwarded client (built by the listener). */
export interface XforwardTrust {
  /** The direction of mail from a forwarded address (networks.internal). */
  directionOf(address: string): Direction;
  /** Whether mail in that direction is inspected (inspect.smtp). */
  inspects(direction: Direction): boolean;
  /** The per-address limits for one transaction of a forwarded client. */
  admit(address: string): Admission;
}

const isAttribute = (name: string): name is XforwardAttribute => (XFORWARD_ATTRIBUTES as readonly string[]).includes(name);

/** One `NAME=value` of a command: the decoded value (undefined when unavailable) and the token as sent. */
export interface XforwardPair {
  name: XforwardAttribute;
  value: string | undefined;
  token: string;
}

/** RFC 3461 4: "+" followed by two upper-case hex digits stands for one byte; undefined when malformed. */
export function decodeXtext(text: string): string | undefined {
  let decoded = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (char !== '+') {
      decoded += char;
      continue;
    }
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
    decoded += String.fromCharCode(Number.parseInt(hex, 16));
    i += 2;
  }
  return decoded;
}

/**
 * The pairs of an XFORWARD argument, or an Error saying what is wrong (501). After decoding,
 * a value may hold no control, non-ASCII or space characters (note 1); ADDR is used only
 * when it is an IP address.
 */
export function parseXforward(argument: string): XforwardPair[] | Error {
  const tokens = argument.split(' ').filter((token) => token !== '');
  if (tokens.length === 0) return new Error('no attribute');
  const pairs: XforwardPair[] = [];
  for (const token of tokens) {
    const equals = token.indexOf('=');
    const name = (equals === -1 ? token : token.slice(0, equals)).toUpperCase();
    if (equals === -1 || !isAttribute(name)) return new Error(`unknown attribute ${name.slice(0, 16)}`);
    const raw = token.slice(equals + 1);
    if (raw.length > MAX_XFORWARD_VALUE_BYTES) return new Error(`${name} value too long`);
    if (raw.toUpperCase() === UNAVAILABLE || raw.toUpperCase() === '[TEMPUNAVAIL]') {
      pairs.push({ name, value: undefined, token: `${name}=${UNAVAILABLE}` });
      continue;
    }
    const value = decodeXtext(raw);
    if (value === undefined || !/^[\x21-\x7e]*$/.test(value)) return new Error(`${name} value malformed`);
    pairs.push({ name, value, token: `${name}=${raw}` });
  }
  return pairs;
}

/** The attribute names an upstream's EHLO reply offers after its XFORWARD keyword (none when absent). */
export function offeredAttributes(ehloLines: readonly string[]): ReadonlySet<XforwardAttribute> {
  for (const line of ehloLines.slice(1)) {
    const words = line.trim().toUpperCase().split(/\s+/);
    if (words[0] === 'XFORWARD') return new Set(words.slice(1).filter(isAttribute));
  }
  return new Set();
}

/** The attributes forwarded for the current transaction; undefined until an XFORWARD is accepted. */
export class ForwardedClient {
  private attributes: Map<XforwardAttribute, string | undefined> | undefined;

  /** An accepted XFORWARD: the first of a transaction starts from "all unavailable". */
  update(pairs: readonly XforwardPair[]): void {
    const attributes = this.attributes ?? new Map<XforwardAttribute, string | undefined>();
    for (const pair of pairs) attributes.set(pair.name, pair.value);
    this.attributes = attributes;
  }

  /** End of the mail transaction: back to the session's own attributes. */
  reset(): void {
    this.attributes = undefined;
  }

  get active(): boolean {
    return this.attributes !== undefined;
  }

  /**
   * The direction of the forwarded client's mail: by its address; without one, SOURCE=LOCAL
   * is outbound and anything else inbound (inspected by default: the safe side).
   */
  direction(trust: XforwardTrust): Direction {
    const address = this.address;
    if (address !== undefined) return trust.directionOf(address);
    return this.local ? 'outbound' : 'inbound';
  }

  /** The forwarded client's IP address (IPV6: prefix removed), when it is one. */
  get address(): string | undefined {
    const value = this.attributes?.get('ADDR');
    if (value === undefined) return undefined;
    const address = value.replace(/^IPV6:/i, '');
    return isIP(address) === 0 ? undefined : address;
  }

  get helo(): string | undefined {
    return this.attributes?.get('HELO');
  }

  /** SOURCE=LOCAL: the peer says the mail originated on it (XFORWARD_README). */
  get local(): boolean {
    return this.attributes?.get('SOURCE')?.toUpperCase() === 'LOCAL';
  }

  /** For logs: the attributes that are known. */
  describe(): Record<string, string> | undefined {
    if (this.attributes === undefined) return undefined;
    const known: Record<string, string> = {};
    for (const [name, value] of this.attributes) if (value !== undefined) known[name.toLowerCase()] = value;
    return known;
  }
}

/** The XFORWARD command relayed upstream with only the attributes it offers; undefined when none remain. */
export function relayedCommand(pairs: readonly XforwardPair[], offered: ReadonlySet<XforwardAttribute>): Buffer | undefined {
  const kept = pairs.filter((pair) => offered.has(pair.name)).map((pair) => pair.token);
  return kept.length === 0 ? undefined : Buffer.from(`XFORWARD ${kept.join(' ')}\r\n`, 'latin1');
}

/** The EHLO reply a trusted peer gets: the relayed capabilities plus XFORWARD. */
export function offerXforward(ehlo: Reply): Reply {
  if (ehlo.code !== 250) return ehlo;
  return { code: ehlo.code, lines: [...ehlo.lines, XFORWARD_CAPABILITY] };
}
