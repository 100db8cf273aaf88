/**
 * Counts the header lines of a captured message (RFC 5322 2.2: the lines before the
 * first empty line; folded continuation lines count, they are lines too). Reads at
 * most `maxBytes` of the message: a header block longer than that counts as over
 * any limit (Infinity).
 */
import type { MessageSource } from '../inspect/api.js';

const LF = 0x0a;

export async function countHeaderLines(message: MessageSource, maxBytes: number): Promise<number> {
  let lines = 0;
  let read = 0;
  let lineLength = 0;
  for await (const chunk of message.open()) {
    for (let index = 0; index < chunk.length; index++) {
      if (read + index >= maxBytes) return Infinity;
      if (chunk[index] !== LF) {
        lineLength++;
        continue;
      }
      // An empty line (only its CR, or nothing) ends the header.
      if (lineLength === 0 || (lineLength === 1 && chunk[index - 1] === 0x0d)) return lines;
      lines++;
      lineLength = 0;
    }
    read += chunk.length;
  }
  return lineLength > 0 ? lines + 1 : lines;
}
