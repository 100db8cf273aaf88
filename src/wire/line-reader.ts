/**
 * The one line splitter for protocol lines (SMTP commands and replies, later POP3).
 *
 * RFC 5321 2.3.8: lines end in CRLF. A bare LF is accepted as a terminator for
 * command and reply lines (as every deployed server does) and the trailing CR,
 * if any, is removed; the line is always re-serialised with CRLF by whoever
 * forwards it, so the peer only ever sees canonical lines.
 *
 * Invariants: bytes stay Buffers; a line longer than `maxLineBytes` is never
 * buffered whole: the reader reports an overflow once and skips to the next LF.
 * `takeRest()` hands the unread bytes to a payload decoder (DATA, RETR).
 */

export type LineEvent =
  | { kind: 'line'; line: Buffer }
  | { kind: 'overflow' };

const LF = 0x0a;
const CR = 0x0d;

export class LineReader {
  private pending: Buffer = Buffer.alloc(0);
  private discarding = false;

  constructor(private readonly maxLineBytes: number) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
  }

  /** Next complete line without its terminator, an overflow notice, or null when more bytes are needed. */
  next(): LineEvent | null {
    for (;;) {
      const lf = this.pending.indexOf(LF);
      if (this.discarding) {
        if (lf === -1) {
          this.pending = Buffer.alloc(0);
          return null;
        }
        this.pending = this.pending.subarray(lf + 1);
        this.discarding = false;
        continue;
      }
      if (lf === -1) {
        if (this.pending.length > this.maxLineBytes) {
          this.pending = Buffer.alloc(0);
          this.discarding = true;
          return { kind: 'overflow' };
        }
        return null;
      }
      const end = lf > 0 && this.pending[lf - 1] === CR ? lf - 1 : lf;
      const line = this.pending.subarray(0, end);
      this.pending = this.pending.subarray(lf + 1);
      if (line.length > this.maxLineBytes) return { kind: 'overflow' };
      return { kind: 'line', line };
    }
  }

  /** Bytes received but not yet read as lines; the reader is left empty. */
  takeRest(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest;
  }

  get buffered(): number {
    return this.pending.length;
  }
}
