/**
 * uuencoded attachments inside text parts (`begin 644 name` ... `end`, the
 * pre-MIME way of attaching files that mail clients still decode). The scanner
 * reads decoded text as it streams, finds each block's name and decodes its first
 * bytes for the content sniffer; it never holds more than one line and SNIFF_BYTES
 * per block.
 */
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

export class UuScanner {
  readonly blocks: UuBlock[] = [];
  private partial = '';
  private open: { name: string; bytes: number[]; lines: number } | undefined;

  write(text: Buffer): void {
    const lines = (this.partial + text.toString('latin1')).split('\n');
    this.partial = (lines.pop() ?? '').slice(0, MAX_UU_LINE_CHARS);
    for (const line of lines) this.line(line.replace(/\r$/, ''));
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
