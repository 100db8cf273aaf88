/**
 * The rewrite pass: the message goes through mailsplit again and only the parts
 * with findings change; every other byte is the original (mailsplit's Joiner
 * emits untouched nodes and boundaries as they were read). A stripped part
 * becomes an inline text/plain notice (quoted-printable, RFC 2045 6.7) naming the
 * file and the reason; the root gets X-Mailmoat-* headers when marking is on.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Joiner } from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import libqp from 'libqp';
import libmime from 'libmime';
import type { MessageSource } from './api.js';
import { splitMessage, type MimeLimits } from './mime.js';

/** What happens to one part: replaced by a notice, or kept under a harmless name (Mailtraq's rename). */
export type PartReplacement =
  | { node: number; kind: 'notice'; notice: string }
  | { node: number; kind: 'rename'; filename: string }
  /** One Content-Type and/or one transfer encoding where the part had several readings. */
  | { node: number; kind: 'normalize'; contentType?: string; encoding?: string };

export interface RewriteOptions {
  replacements: readonly PartReplacement[];
  /** Header lines added to the root (name, value), in order. */
  rootHeaders: readonly [string, string][];
  /** Put in front of the Subject ("" for none). */
  subjectTag: string;
  limits: MimeLimits;
}

export interface MessageSink {
  write(chunk: Buffer): boolean;
  drained(): Promise<void>;
}

class PartReplacer extends Transform {
  private nodeIndex = -1;
  private skippingBody = false;
  private readonly byNode = new Map<number, PartReplacement[]>();

  constructor(private readonly options: RewriteOptions) {
    super({ objectMode: true });
    for (const replacement of options.replacements) this.byNode.set(replacement.node, [...(this.byNode.get(replacement.node) ?? []), replacement]);
  }

  override _transform(chunk: SplitterChunk, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.type !== 'node') {
      if (!(chunk.type === 'body' && this.skippingBody)) this.push(chunk);
      return callback();
    }
    this.nodeIndex++;
    const node = chunk as MimeNode;
    // Headers change before the node is pushed: the Joiner serialises them when it receives it.
    if (this.nodeIndex === 0 && node.headers) {
      for (const [name, value] of [...this.options.rootHeaders].reverse()) node.headers.add(name, value);
      if (this.options.subjectTag !== '') {
        // The raw value, encoded-words and all, so that nothing is decoded into an 8-bit header.
        const line = node.headers.get('subject')[0];
        const subject = line === undefined ? '' : line.slice(line.indexOf(':') + 1).replace(/\r?\n(?=[ \t])/g, '').trim();
        node.headers.update('Subject', subject ? `${this.options.subjectTag} ${subject}` : this.options.subjectTag);
      }
    }
    const changes = this.byNode.get(this.nodeIndex) ?? [];
    for (const change of changes) {
      if (change.kind !== 'normalize' || !node.headers) continue;
      if (change.contentType !== undefined) node.headers.update('Content-Type', change.contentType);
      if (change.encoding !== undefined) node.headers.update('Content-Transfer-Encoding', change.encoding);
    }
    const replacement = changes.find((change) => change.kind !== 'normalize');
    this.skippingBody = replacement?.kind === 'notice';
    if (replacement?.kind === 'rename' && node.headers) {
      node.headers.update('Content-Type', 'application/octet-stream');
      node.headers.update('Content-Disposition', libmime.buildHeaderValue({ value: 'attachment', params: { filename: replacement.filename } }));
    }
    if (replacement?.kind !== 'notice') {
      this.push(node);
      return callback();
    }
    const notice = replacement.notice;
    if (node.headers) {
      node.headers.remove('Content-Disposition');
      node.headers.remove('Content-Description');
      node.headers.update('Content-Type', 'text/plain; charset=utf-8');
      node.headers.update('Content-Transfer-Encoding', 'quoted-printable');
    }
    this.push(node);
    const encoded = libqp.wrap(libqp.encode(Buffer.from(notice, 'utf8')), 76);
    this.push(Buffer.from(node.root ? `${encoded}\r\n` : encoded, 'latin1'));
    callback();
  }
}

/** Writes the rewritten message into `sink`, honouring its backpressure. */
export async function rewriteMessage(message: MessageSource, options: RewriteOptions, sink: MessageSink): Promise<void> {
  await pipeline(splitMessage(message, options.limits), new PartReplacer(options), new Joiner(), async (output: AsyncIterable<Buffer>) => {
    for await (const chunk of output) {
      if (!sink.write(chunk)) await sink.drained();
    }
  });
}
