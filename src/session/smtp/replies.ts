/**
 * SMTP replies: parse the upstream's (multi-line) replies, serialise ours, filter
 * EHLO capabilities, and sanitise upstream text before it reaches the downstream.
 *
 * RFC 5321 4.2 (reply syntax: "ddd-text" continuation lines, "ddd text" last line),
 * RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 3030 (CHUNKING/BINARYMIME, removed),
 * RFC 3207 (STARTTLS: offered only when the listener's policy relays or intercepts it
 * and the upstream offers it).
 * Upstream text is not trusted: control characters are masked and lines capped.
 */
import type { Reply } from '../../errors.js';

/** RFC 5321 4.5.3.1.5 allows 512 octets per reply line; longer upstream text is cut. */
export const MAX_REPLY_TEXT_BYTES = 510;
/** A reply with more lines than this is a protocol error (Postfix EHLO has ~12). */
export const MAX_REPLY_LINES = 100;

/** EHLO keywords the proxy relays; everything else is removed (RFC 5321 4.1.1.1 allows any subset). */
const RELAYED_EXTENSIONS: ReadonlySet<string> = new Set([
  'PIPELINING',
  'SIZE',
  '8BITMIME',
  'SMTPUTF8',
  'ENHANCEDSTATUSCODES',
  'DSN',
  'AUTH',
  'VRFY',
  'ETRN',
  'HELP',
]);

export class ReplyParser {
  private lines: string[] = [];
  private code = 0;

  /**
   * Feeds one reply line; returns the complete reply after its last line,
   * null while a multi-line reply continues, or an Error for a malformed line.
   */
  feed(line: Buffer): Reply | null | Error {
    const text = line.toString('latin1');
    const match = /^(\d{3})([ -]|$)(.*)$/s.exec(text);
    if (!match) return new Error(`malformed reply line: ${sanitizeText(text).slice(0, 80)}`);
    const code = Number(match[1]);
    if (this.lines.length > 0 && code !== this.code) return new Error('reply code changed inside a multi-line reply');
    if (this.lines.length >= MAX_REPLY_LINES) return new Error('too many reply lines');
    this.code = code;
    this.lines.push(sanitizeText(match[3] ?? ''));
    if (match[2] === '-') return null;
    const reply: Reply = { code, lines: this.lines };
    this.lines = [];
    return reply;
  }
}

/** Masks control characters and caps the length; 8-bit bytes (UTF-8 text) pass. */
export function sanitizeText(text: string): string {
  const masked = text.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '?');
  return masked.length > MAX_REPLY_TEXT_BYTES ? masked.slice(0, MAX_REPLY_TEXT_BYTES) : masked;
}

export function serializeReply(reply: Reply): Buffer {
  if (reply.lines.length === 1 && reply.lines[0] !== '') return Buffer.from(`${reply.code} ${reply.lines[0]}\r\n`, 'latin1');
  const lines = reply.lines.length === 0 ? [''] : reply.lines;
  const wire = lines
    .map((text, index) => {
      const separator = index === lines.length - 1 ? ' ' : '-';
      return text === '' && separator === ' ' ? `${reply.code}\r\n` : `${reply.code}${separator}${text}\r\n`;
    })
    .join('');
  return Buffer.from(wire, 'latin1');
}

/**
 * Keeps the relayed EHLO keywords; SIZE is lowered to the proxy's own limit
 * (RFC 1870 4: "SIZE 0" or no value means no fixed limit upstream).
 */
export function filterEhloReply(reply: Reply, maxMessageBytes: number, offerStartTls = false): Reply {
  if (reply.code !== 250 || reply.lines.length < 2) return reply;
  const [greeting, ...capabilities] = reply.lines;
  const kept: string[] = [];
  for (const capability of capabilities) {
    const keyword = (capability.split(/[ =]/, 1)[0] ?? '').toUpperCase();
    if (keyword === 'STARTTLS' && offerStartTls) {
      kept.push('STARTTLS');
      continue;
    }
    if (!RELAYED_EXTENSIONS.has(keyword)) continue;
    if (keyword === 'SIZE') {
      const upstreamLimit = Number(capability.slice(4).trim() || '0');
      const limit = upstreamLimit > 0 ? Math.min(upstreamLimit, maxMessageBytes) : maxMessageBytes;
      kept.push(`SIZE ${limit}`);
      continue;
    }
    kept.push(capability);
  }
  return { code: reply.code, lines: [greeting ?? '', ...kept] };
}
