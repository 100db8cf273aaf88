/**
 * BinHex 4.0 (RFC 1741, application/mac-binhex40, .hqx): the Macintosh encoding
 * that StuffIt, Eudora and some clients still open. The reader streams the text:
 * after the "(This file must be converted ...)" line (optional) the
 * data runs from a ':' to the next ':', six bits per character of its own
 * alphabet, then run-length expanded (0x90 n repeats the previous byte). The
 * decoded stream is a header (name, type, creator, fork lengths) then the data
 * fork: only the name and the data fork's first SNIFF_BYTES are kept, for the
 * content sniffer. The CRCs are not checked (a client that opens a damaged file
 * is the worse case).
 */
import { SNIFF_BYTES } from './sniff.js';

export interface BinHexFile {
  name: string;
  head: Buffer;
}

const ALPHABET = '!"#$%&\'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr';
const VALUES = new Int8Array(256).fill(-1);
for (let index = 0; index < ALPHABET.length; index++) VALUES[ALPHABET.charCodeAt(index)] = index;
const COLON = 0x3a;
const LF = 0x0a;
const RUN_MARKER = 0x90;
/** The header ends 1 + name + 1 + type 4 + creator 4 + flags 2 + data length 4 + resource length 4 + CRC 2 bytes in. */
const HEADER_FIXED_BYTES = 22;

/** Whether a part is BinHex by its declared type or name, or by the line its text starts with. */
export function claimsBinHex(names: readonly string[], contentType: string): boolean {
  return /^application\/(x-)?mac-binhex(40)?$/i.test(contentType) || names.some((name) => /\.hqx\s*$/i.test(name));
}

export class BinHexScanner {
  private started = false;
  private finished = false;
  private atLineStart = true;
  private bits = 0;
  private bitCount = 0;
  private previous = -1;
  private runPending = false;
  private readonly header: number[] = [];
  private readonly data: number[] = [];
  private dataLength = -1;

  /** True once the name and the data fork's head are known (nothing more needs to be written). */
  get satisfied(): boolean {
    return this.finished || (this.dataLength >= 0 && this.data.length >= Math.min(this.dataLength, SNIFF_BYTES));
  }

  write(text: Buffer): void {
    for (const byte of text) {
      if (this.satisfied) return;
      if (!this.started) {
        // The data starts at a ':' that opens a line.
        if (byte === COLON && this.atLineStart) this.started = true;
        this.atLineStart = byte === LF;
        continue;
      }
      if (byte === COLON) {
        this.finished = true;
        return;
      }
      const value = VALUES[byte] ?? -1;
      if (value < 0) continue;
      this.bits = ((this.bits << 6) | value) & 0xffffff;
      this.bitCount += 6;
      if (this.bitCount >= 8) {
        this.bitCount -= 8;
        this.expanded((this.bits >> this.bitCount) & 0xff);
      }
    }
  }

  /** The file, once its header was read; undefined when the text holds no BinHex data. */
  end(): BinHexFile | undefined {
    const nameLength = this.header[0];
    if (nameLength === undefined || this.header.length < nameLength + HEADER_FIXED_BYTES) return undefined;
    return { name: Buffer.from(this.header.slice(1, 1 + nameLength)).toString('latin1'), head: Buffer.from(this.data.slice(0, SNIFF_BYTES)) };
  }

  /** Run-length expansion: 0x90 0 is a literal 0x90, 0x90 n repeats the previous byte to n in all. */
  private expanded(byte: number): void {
    if (this.runPending) {
      this.runPending = false;
      if (byte === 0) {
        this.previous = RUN_MARKER;
        this.output(RUN_MARKER);
        return;
      }
      for (let count = 1; count < byte && !this.satisfied; count++) this.output(this.previous);
      return;
    }
    if (byte === RUN_MARKER) {
      this.runPending = true;
      return;
    }
    this.previous = byte;
    this.output(byte);
  }

  private output(byte: number): void {
    if (this.previous < 0) return;
    const nameLength = this.header[0];
    if (nameLength === undefined || this.header.length < nameLength + HEADER_FIXED_BYTES) {
      this.header.push(byte);
      const complete = this.header[0] !== undefined && this.header.length === (this.header[0] ?? 0) + HEADER_FIXED_BYTES;
      if (complete) this.dataLength = Buffer.from(this.header).readUInt32BE((this.header[0] ?? 0) + 12);
      return;
    }
    if (this.data.length < SNIFF_BYTES && this.data.length < this.dataLength) this.data.push(byte);
  }
}
