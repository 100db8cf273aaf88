/**
 * The "relaxed" canonicalization of DKIM (RFC 6376 3.4.2 for header fields, 3.4.4 for the
 * body), which ARC uses for both of its signatures (RFC 8617 4.1.2, 4.1.3). The body hash is
 * computed in one streaming pass that hands runs of lines without whitespace to the hash as
 * they are (base64 attachments, most of a rewritten message's bytes) and rewrites only the
 * lines that need it; a line split across chunks carries at most two bytes to the next one.
 * Lines end at LF; a bare LF counts as CRLF (as mailauth and dkimpy read it).
 */
import { createHash } from 'node:crypto';

const SP = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n', 'latin1');
const NONE = Buffer.alloc(0);

/** One header field (name, colon, value, folded or not, with or without its CRLF) in relaxed form, without CRLF. */
export function relaxedHeader(field: string): string {
  const colon = field.indexOf(':');
  const name = field.slice(0, colon).replace(/[ \t]+$/, '').toLowerCase();
  const value = field
    .slice(colon + 1)
    .replace(/\r?\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim();
  return `${name}:${value}`;
}

/** The next space or tab at or after `from`, or the data's length. */
function nextWsp(data: Buffer, from: number): number {
  const space = data.indexOf(SP, from);
  const tab = data.indexOf(TAB, from);
  if (space < 0) return tab < 0 ? data.length : tab;
  return tab < 0 ? space : Math.min(space, tab);
}

/** A line's content with every run of WSP reduced to one space and none at its end. */
function relaxedLine(content: Buffer): Buffer {
  return Buffer.from(content.toString('latin1').replace(/[ \t]+/g, ' ').replace(/ $/, ''), 'latin1');
}

export class RelaxedBodyHash {
  private readonly hash = createHash('sha256');
  /** The unfinished line's bytes not yet hashed: at most one space and a CR. */
  private carry: Buffer = NONE;
  /** Empty lines seen and not yet hashed: hashed only when a non-empty line follows (3.4.4 b). */
  private pendingEmpty = 0;
  /** Part of the current line is hashed already (it is not empty). */
  private midLine = false;

  update(chunk: Buffer): void {
    const data = this.carry.length === 0 ? chunk : Buffer.concat([this.carry, chunk]);
    let position = 0;
    let runStart = 0;
    let wsp = nextWsp(data, 0);
    for (let lf = data.indexOf(LF); lf >= 0; lf = data.indexOf(LF, position)) {
      const hasCr = lf > position && data[lf - 1] === CR;
      const end = hasCr ? lf - 1 : lf;
      if (wsp < position) wsp = nextWsp(data, position);
      if (end === position && !this.midLine) {
        this.flush(data, runStart, position);
        this.pendingEmpty++;
        runStart = lf + 1;
      } else if (hasCr && wsp >= end) {
        if (this.pendingEmpty > 0) {
          this.flush(data, runStart, position);
          this.flushEmpty();
          runStart = position;
        }
      } else {
        this.flush(data, runStart, position);
        this.line(relaxedLine(data.subarray(position, end)));
        runStart = lf + 1;
      }
      this.midLine = false;
      position = lf + 1;
    }
    this.flush(data, runStart, position);
    this.tail(data.subarray(position));
  }

  /** The body hash, base64 (the bh= tag). */
  digest(): string {
    const last = this.carry;
    this.carry = NONE;
    if (last.length > 0 || this.midLine) this.line(relaxedLine(last));
    return this.hash.digest('base64');
  }

  /** A finished line in relaxed form: an empty one waits, any other is hashed with CRLF after the waiting ones. */
  private line(relaxed: Buffer): void {
    if (relaxed.length === 0 && !this.midLine) {
      this.pendingEmpty++;
      return;
    }
    this.flushEmpty();
    this.hash.update(relaxed);
    this.hash.update(CRLF);
  }

  /** An unfinished line: everything up to its last non-WSP byte is hashed now; a trailing WSP run (as one space) and a CR wait. */
  private tail(rest: Buffer): void {
    if (rest.length === 0) {
      this.carry = NONE;
      return;
    }
    const endsCr = rest[rest.length - 1] === CR;
    const content = endsCr ? rest.subarray(0, -1) : rest;
    let last = content.length - 1;
    while (last >= 0 && (content[last] === SP || content[last] === TAB)) last--;
    if (last >= 0) {
      const head = content.subarray(0, last + 1);
      this.flushEmpty();
      this.hash.update(nextWsp(head, 0) < head.length ? relaxedLine(head) : head);
      this.midLine = true;
    }
    const trailingWsp = last < content.length - 1;
    this.carry = Buffer.from(`${trailingWsp ? ' ' : ''}${endsCr ? '\r' : ''}`, 'latin1');
  }

  private flush(data: Buffer, from: number, to: number): void {
    if (to > from) this.hash.update(data.subarray(from, to));
  }

  private flushEmpty(): void {
    for (; this.pendingEmpty > 0; this.pendingEmpty--) this.hash.update(CRLF);
  }
}
