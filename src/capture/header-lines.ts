/**
 * Counts the header lines of a captured message (RFC 5322 2.2: header fields, and the
 * folded continuation lines that belong to them, up to the first empty line). The
 * count stops at the first line that is neither a field nor a continuation, since
 * that is where a malformed message's body begins. Reads at most `maxBytes`: a header
 * block longer than that (one endless line included) is reported as too large, which
 * is a different refusal from too many lines.
 */
import type { MessageSource } from '../inspect/api.js';

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;

/** RFC 5322 2.2: a field name is printable US-ASCII except the colon, then a colon. */
function isField(line: Buffer): boolean {
  for (let index = 0; index < line.length; index++) {
    const byte = line[index] as number;
    if (byte === COLON) return index > 0;
    if (byte < 0x21 || byte > 0x7e) return false;
  }
  return false;
}

const isContinuation = (line: Buffer): boolean => line[0] === 0x20 || line[0] === 0x09;

export type HeaderCount = { kind: 'lines'; lines: number } | { kind: 'too-large' };

export async function countHeaderLines(message: MessageSource, maxBytes: number): Promise<HeaderCount> {
  const lines = await count(message, maxBytes);
  return lines === undefined ? { kind: 'too-large' } : { kind: 'lines', lines };
}

/** The header line count, or undefined when the header block is longer than `maxBytes`. */
async function count(message: MessageSource, maxBytes: number): Promise<number | undefined> {
  let lines = 0;
  let pending: Buffer = Buffer.alloc(0);
  let read = 0;
  for await (const chunk of message.open()) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (let lf = pending.indexOf(LF); lf !== -1; lf = pending.indexOf(LF)) {
      const line = pending.subarray(0, lf > 0 && pending[lf - 1] === CR ? lf - 1 : lf);
      pending = pending.subarray(lf + 1);
      if (line.length === 0) return lines;
      if (isField(line) || (lines > 0 && isContinuation(line))) lines++;
      else return lines;
    }
    read += chunk.length;
    if (read >= maxBytes) return undefined;
  }
  return lines;
}
