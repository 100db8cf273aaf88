/**
 * A rewritten message seen as header block + body, and new header fields put on top of it
 * without copying it: the forwarded message is the added fields, the kept header fields and
 * the rewritten body read from its spool. Messages are canonical CRLF (RFC 5322 2.2); the
 * header block ends with the CRLF of its last field, the empty line starts the body.
 */
import type { MessageSource } from '../inspect/api.js';

const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');

export interface HeaderSplit {
  /** The header fields, each ending in CRLF ("" for a message that begins with the empty line). */
  header: Buffer;
  /** Where the rest (the empty line and the body) begins in the source. */
  bodyOffset: number;
}

/** Reads the header block; a header larger than `maxHeaderBytes` is an error (the inspector's walk bounds it the same way). */
export async function splitHeader(source: MessageSource, maxHeaderBytes: number): Promise<HeaderSplit> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of source.open()) {
    chunks.push(chunk);
    length += chunk.length;
    const read = Buffer.concat(chunks, length);
    if (read.subarray(0, 2).equals(HEADER_END.subarray(0, 2))) return { header: Buffer.alloc(0), bodyOffset: 0 };
    const end = read.indexOf(HEADER_END);
    if (end >= 0) return { header: read.subarray(0, end + 2), bodyOffset: end + 2 };
    if (length > maxHeaderBytes) throw new Error(`the message header is larger than ${maxHeaderBytes} bytes`);
    chunks.splice(0, chunks.length, read);
  }
  const whole = Buffer.concat(chunks, length);
  // A message of header fields only: it ends with the CRLF of its last field.
  return { header: whole, bodyOffset: whole.length };
}

/** `top` in front of `header`, then `source` from `bodyOffset` on; disposing it disposes `source`. */
export function withHeader(
  top: Buffer,
  split: HeaderSplit,
  source: MessageSource & { dispose(): Promise<void> },
): MessageSource & { dispose(): Promise<void> } {
  const head = Buffer.concat([top, split.header]);
  return {
    size: head.length + source.size - split.bodyOffset,
    async *open() {
      yield head;
      let skip = split.bodyOffset;
      for await (const chunk of source.open()) {
        if (skip >= chunk.length) {
          skip -= chunk.length;
          continue;
        }
        yield skip === 0 ? chunk : chunk.subarray(skip);
        skip = 0;
      }
    },
    dispose: () => source.dispose(),
  };
}
