/**
 * uuencode, two ways. A part whose Content-Transfer-Encoding is x-uuencode, x-uue,
 * uuencode or uue (not in RFC 2045, but decoded by mail clients and by Python's
 * email package) is decoded whole by UuDecoder, as the client would save it.
 * uuencoded attachments inside text parts (`begin 644 name` ... `end`, the
 * pre-MIME way of attaching files that mail clients still decode) are found by
 * UuScanner. The scanner
 * reads decoded text as it streams, finds each block's name and decodes its first
 * bytes for the content sniffer; it never holds more than one line and SNIFF_BYTES
 * per block. Lines that cannot change its state are passed over in one search:
 * outside a block every line but a "begin" one, inside a block whose first bytes
 * are decoded every line but the ones that end it.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { SNIFF_BYTES } from './sniff.js';

export interface UuBlock {
  name: string;
  head: Buffer;
}

/** Blocks past this many in one part are not decoded (a part full of "begin" lines is no reason to work harder). */
export const MAX_UU_BLOCKS_PER_PART = 100;
/** A line longer than this cannot be a uuencoded line or a begin line worth reading. */
const MAX_UU_LINE_CHARS = 1024;
const BEGIN_LINE = /^begin(?:-base64)?\s+[0-7]{3,4}\s+(.+?)\s*$/;
/** After a line break: a line that ends a block ("end", "`" or empty, before one optional CR). */
const CLOSING_LINE = /\n(?:end|`)?\r?\n/g;

export class UuScanner {
  readonly blocks: UuBlock[] = [];
  private partial = '';
  private open: { name: string; bytes: number[]; lines: number } | undefined;

  write(text: Buffer): void {
    const data = this.partial + text.toString('latin1');
    let start = 0;
    for (;;) {
      const next = this.nextLineThatMatters(data, start);
      // None in this text: what follows its last line break is the start of the next line.
      if (next === -1) {
        start = Math.max(start, data.lastIndexOf('\n') + 1);
        break;
      }
      const lf = data.indexOf('\n', next);
      if (lf === -1) {
        start = next;
        break;
      }
      this.line(data.slice(next, lf).replace(/\r$/, ''));
      start = lf + 1;
    }
    this.partial = data.slice(start).slice(0, MAX_UU_LINE_CHARS);
  }

  /**
   * The start of the first line at or after `start` (itself a line start) that line() would act
   * on, or -1. Outside a block only a line starting with "begin" can open one (and none once the
   * part has its MAX_UU_BLOCKS_PER_PART); inside a block that has data lines and all the bytes it
   * keeps, only a closing line counts.
   */
  private nextLineThatMatters(data: string, start: number): number {
    const open = this.open;
    if (open === undefined) {
      if (this.blocks.length >= MAX_UU_BLOCKS_PER_PART) return -1;
      for (let at = data.indexOf('begin', start); at !== -1; at = data.indexOf('begin', at + 1)) {
        if (at === start || data.charCodeAt(at - 1) === 0x0a) return at;
      }
      return -1;
    }
    if (open.lines === 0 || open.bytes.length < SNIFF_BYTES) return start;
    if (/^(?:end|`)?\r?\n/.test(data.slice(start, start + 5))) return start;
    CLOSING_LINE.lastIndex = start;
    const closing = CLOSING_LINE.exec(data);
    return closing === null ? -1 : closing.index + 1;
  }

  end(): UuBlock[] {
    if (this.partial !== '') this.line(this.partial);
    this.partial = '';
    this.close();
    return this.blocks;
  }

  private line(line: string): void {
    if (line.length > MAX_UU_LINE_CHARS) return;
    if (this.open === undefined) {
      const begin = BEGIN_LINE.exec(line);
      if (begin !== null && this.blocks.length < MAX_UU_BLOCKS_PER_PART) this.open = { name: begin[1] ?? '', bytes: [], lines: 0 };
      return;
    }
    if (line === 'end' || line === '`' || line === '') return this.close();
    if (!isUuLine(line)) {
      // Prose that happens to start with "begin 644": not a block unless data lines follow.
      if (this.open.lines === 0) this.open = undefined;
      return;
    }
    this.open.lines++;
    if (this.open.bytes.length < SNIFF_BYTES) this.open.bytes.push(...decodeUuLine(line));
  }

  private close(): void {
    if (this.open === undefined) return;
    if (this.open.lines > 0) this.blocks.push({ name: this.open.name, head: Buffer.from(this.open.bytes.slice(0, SNIFF_BYTES)) });
    this.open = undefined;
  }
}

/** A uuencoded data line: printable uu characters, as many as its length character announces. */
function isUuLine(line: string): boolean {
  if (!/^[\x20-\x60]+$/.test(line)) return false;
  const expected = 1 + Math.ceil((((line.charCodeAt(0) - 32) & 0x3f) * 4) / 3);
  return line.length >= expected && line.length <= expected + 4;
}

/** One uuencoded line: a length character, then 4 characters per 3 bytes (each char - 32, mod 64). */
function decodeUuLine(line: string): number[] {
  const value = (index: number): number => ((line.charCodeAt(index) || 32) - 32) & 0x3f;
  const length = value(0);
  const bytes: number[] = [];
  for (let i = 1; bytes.length < length; i += 4) {
    const [a, b, c, d] = [value(i), value(i + 1), value(i + 2), value(i + 3)];
    bytes.push(((a << 2) | (b >> 4)) & 0xff, ((b << 4) | (c >> 2)) & 0xff, ((c << 6) | d) & 0xff);
  }
  return bytes.slice(0, length);
}

/** The transfer encodings that name uuencode (RFC 1341 listed x-uuencode; clients accept all four). */
export const UUENCODE_ENCODINGS: ReadonlySet<string> = new Set(['x-uuencode', 'x-uue', 'uuencode', 'uue']);
/** Text before the begin line kept to be passed on as it is, should no begin line come (then the part is not uuencoded). */
export const MAX_UU_PREAMBLE_BYTES = 64 * 1024;
/** A begin line as Python's email package reads it: "begin ", an octal mode, a space, the name. */
const TRANSFER_BEGIN_LINE = /^begin ([0-7]+)(?: (.*?))?\r?$/;

/**
 * Decodes a body whose transfer encoding is uuencode: the lines between the first
 * begin line and "end" (or an empty line, where the data is cut), line by line. A
 * body without a begin line is passed on as it was (the reading Python's email
 * package falls back to). `name` is the begin line's file name, once read.
 */
export class UuDecoder extends Transform {
  name = '';
  private state: 'preamble' | 'data' | 'done' | 'raw' = 'preamble';
  private partial = '';
  private preamble: Buffer[] = [];
  private preambleBytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.state === 'raw') return callback(null, chunk);
    if (this.state === 'done') return callback();
    const lines = (this.partial + chunk.toString('latin1')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line, true);
    if (this.state === 'preamble' && this.partial.length > MAX_UU_LINE_CHARS) this.giveUp();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.partial !== '') this.line(this.partial, false);
    if (this.state === 'preamble') this.giveUp();
    callback();
  }

  private line(line: string, terminated: boolean): void {
    switch (this.state) {
      case 'preamble': {
        const begin = TRANSFER_BEGIN_LINE.exec(line);
        if (begin !== null) {
          this.name = (begin[2] ?? '').trim();
          this.state = 'data';
          this.preamble = [];
          return;
        }
        const raw = Buffer.from(terminated ? `${line}\n` : line, 'latin1');
        this.preamble.push(raw);
        this.preambleBytes += raw.length;
        if (this.preambleBytes > MAX_UU_PREAMBLE_BYTES) this.giveUp();
        return;
      }
      case 'data': {
        const data = line.replace(/\r$/, '');
        if (data === '' || data.trim() === 'end') {
          this.state = 'done';
          return;
        }
        this.push(Buffer.from(decodeUuLine(data)));
        return;
      }
      case 'raw':
        this.push(Buffer.from(terminated ? `${line}\n` : line, 'latin1'));
        return;
      case 'done':
        return;
    }
  }

  /** No begin line: the body is not uuencoded after all, and goes on as it was. */
  private giveUp(): void {
    this.state = 'raw';
    for (const raw of this.preamble) this.push(raw);
    this.preamble = [];
    if (this.partial !== '') this.push(Buffer.from(this.partial, 'latin1'));
    this.partial = '';
  }
}
