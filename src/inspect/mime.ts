/**
 * The MIME walk (RFC 2045-2049) over mailsplit: every leaf part with its names,
 * declared type and the first decoded bytes, in the order mailsplit emits nodes.
 * The same order numbers the parts for the rewrite pass.
 *
 * The reading is a mail client's: delimiter lines with transport padding (RFC 2046
 * 5.1.1, in the mailsplit patch), every message/* subtype walked as a message (RFC
 * 2046 5.2; message/partial, a fragment that cannot be read alone, is unscannable; an
 * untyped part of a multipart/digest is message/rfc822, RFC 2046 5.1.5),
 * the uuencode transfer encodings decoded (uuencode.ts), the files inside BinHex
 * (binhex.ts) and TNEF (tnef.ts) parts and uuencoded blocks in text listed.
 * An attached message is walked while it is decoded (decoded-feed.ts), so the
 * memory of the walk does not grow with the nesting.
 *
 * Input is re-chunked so that no chunk ends in CR: mailsplit loses data when one
 * chunk ends with CR and the next starts with LF (zone-eu/mailsplit #28/#31).
 * Limits: header block size and child count (mailsplit), part count and nesting
 * depth (here); exceeding one is a MimeLimitError, never a crash.
 */
import type { EventEmitter } from 'node:events';
import type { Transform } from 'node:stream';
import { Splitter } from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import type { MessageSource } from './api.js';
import { namesFromHeaders } from './filename.js';
import { SNIFF_BYTES } from './sniff.js';
import { claimsContainer, looksLikeContainer, CONTAINER_MAGIC_BYTES } from './archive.js';
import { UuDecoder, UuScanner, UUENCODE_ENCODINGS } from './uuencode.js';
import { BinHexScanner, claimsBinHex } from './binhex.js';
import { claimsTnef, looksLikeTnef, readTnef } from './tnef.js';
import { DecodedFeed } from './decoded-feed.js';
import { IdentityDecoder } from './identity-decoder.js';
import type { UnscannableReason } from './archive.js';
import libqp from 'libqp';

export interface MimeLimits {
  maxParts: number;
  maxDepth: number;
  maxHeaderBytes: number;
  /** A container (archive, compressed file, Office document) or TNEF part's decoded bytes are kept up to this size for listing. */
  maxArchiveBytes: number;
  /** An attached message (message/*) is walked up to this many decoded bytes. */
  maxAttachedMessageBytes: number;
}

/** A file inside a part that a client unpacks: a uuencoded block in text, a BinHex file, a TNEF attachment. */
export interface ContainedFile {
  /** Its names (a TNEF attachment has up to three; a client may show any). */
  names: string[];
  head: Buffer;
  /** How it is carried, for people ("uuencoded in the text", "inside BinHex", "inside TNEF"). */
  form: string;
}

/** Why a part, or what it carries, cannot be read. */
export interface Unreadable {
  unscannable: UnscannableReason;
  reason: string;
}

/**
 * Receives every leaf's decoded bytes, at every nesting depth, as the walk decodes them
 * (the whole of each leaf is then decoded). The walk does not wait for it.
 */
export interface LeafObserver {
  open(part: LeafPart, depth: number): { write(decoded: Buffer): void; end(): void };
}

export interface LeafPart {
  /** Position among all nodes (0 = root), the key the rewrite pass uses. */
  node: number;
  /** IMAP-style part number, for people ("2.1"). */
  path: string;
  contentType: string;
  names: string[];
  head: Buffer;
  /** For a part that is (or claims to be) a container (archive, compressed file, Office document): its decoded bytes, or 'too big' past maxArchiveBytes. */
  archive?: Buffer | 'too big';
  /** Files a client unpacks from this part (uuencoded blocks in text, BinHex, TNEF). */
  contained: ContainedFile[];
  /** What of this part could not be read (a TNEF stream that does not parse or is too big). */
  unreadable?: Unreadable;
  /**
   * When the part declares more than one Content-Transfer-Encoding, the first bytes as each
   * other encoding would decode them (a parser differential: a client may pick the other one).
   */
  otherReadings: { encoding: string; head: Buffer }[];
  /** For an attached message (message/*, any disposition or encoding): its own leaf parts, or why not. */
  embedded?: LeafPart[] | Unreadable;
}

/**
 * A node whose headers can be read more than one way (two Content-Type headers or
 * boundary parameters naming different boundaries, two transfer encodings): the
 * single reading mailsplit used, to be written back so every reader agrees.
 */
export interface AmbiguousNode {
  node: number;
  path: string;
  contentType?: string;
  encoding?: string;
  reason: string;
}

/** Every message/* subtype holds a message a client displays (message/news, message/x-anything...), but a fragment. */
const isAttachedMessage = (contentType: string): boolean => /^message\//i.test(contentType) && !isFragment(contentType);
const isFragment = (contentType: string): boolean => /^message\/partial$/i.test(contentType);
const FRAGMENT: Unreadable = { unscannable: 'partial', reason: 'a fragment of a message (message/partial, RFC 2046 5.2.2) cannot be inspected alone' };
/** A part of a multipart/digest without a Content-Type is a message (RFC 2046 5.1.5), as clients read it. */
const inDigest = (node: MimeNode): boolean => node.parentNode !== false && node.parentNode.multipart === 'digest' && (node.headers ? node.headers.get('content-type').length : 0) === 0;
/** The line a BinHex 4.0 file starts with (RFC 1741). */
const BINHEX_FIRST_LINE = /^\s*\(This file must be converted/;

export class MimeLimitError extends Error {}

/** Encoded body bytes fed to a part's decoder: enough for SNIFF_BYTES of base64 or quoted-printable. */
const SNIFF_FEED_BYTES = SNIFF_BYTES * 4;
/** base64 is fed in slices of this size until SNIFF_BYTES came out (one slice of lines of 76 gives 4.5 KB). */
const BASE64_SLICE_BYTES = 6 * 1024;
const EQUALS_SIGN = 0x3d;

const CR = 0x0d;

const CR_BYTE = Buffer.from([CR]);

/** Resolves once `stream` may be written again, or has closed (then nothing more is written). */
const writableAgain = (stream: EventEmitter): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });

/**
 * Writes the message into the splitter with a trailing CR of each chunk held for the next one,
 * so that CR and LF always reach mailsplit in the same chunk. Backpressure by 'drain'; a
 * destroyed splitter (a limit, or a consumer that stopped) ends the feed and closes the source.
 */
async function feedSplitter(message: MessageSource, splitter: Splitter): Promise<void> {
  let heldCr = false;
  try {
    for await (const chunk of message.open()) {
      if (splitter.destroyed) return;
      let data: Buffer = heldCr ? Buffer.concat([CR_BYTE, chunk]) : chunk;
      heldCr = data.length > 0 && data[data.length - 1] === CR;
      if (heldCr) data = data.subarray(0, data.length - 1);
      if (data.length > 0 && !splitter.write(data)) await writableAgain(splitter);
    }
    if (splitter.destroyed) return;
    if (heldCr) splitter.write(CR_BYTE);
    splitter.end();
  } catch (error) {
    splitter.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}

export function splitMessage(message: MessageSource, limits: MimeLimits): Splitter {
  const splitter = new Splitter({ maxHeadSize: limits.maxHeaderBytes, maxChildNodes: limits.maxParts });
  void feedSplitter(message, splitter);
  return splitter;
}

/** A part's decoder: mailsplit's stream for base64 and quoted-printable (and any attached message), else the identity. */
type PartDecoder = Transform | IdentityDecoder;

interface PartState {
  part: LeafPart;
  decoder: PartDecoder;
  collected: Buffer[];
  collectedBytes: number;
  /** Body bytes seen, and of those fed to the decoder while only the sniff window is wanted. */
  rawBytes: number;
  fedBytes: number;
  archive: boolean;
  tnef: boolean;
  uu: UuScanner | undefined;
  uuDecoder: UuDecoder | undefined;
  binhex: BinHexScanner | undefined;
  /** An attached message: its walk, running while it is decoded. */
  nested: { feed: DecodedFeed; walk: Promise<LeafPart[] | Unreadable> } | undefined;
  sink: { write(decoded: Buffer): void; end(): void } | undefined;
  base64: boolean;
  otherEncodings: string[];
  raw: Buffer[];
  done: Promise<void>;
}

/** The first raw bytes of a body as `encoding` would decode them (RFC 2045 6). */
function decodeAs(encoding: string, raw: Buffer): Buffer {
  switch (encoding) {
    case 'base64':
      return Buffer.from(raw.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
    case 'quoted-printable':
      return libqp.decode(raw.toString('latin1'));
    default:
      return raw;
  }
}

/** The distinct Content-Transfer-Encoding values of a node's header lines, trimmed and in lower case. */
const transferEncodings = (lines: readonly string[]): Set<string> => new Set(lines.map((line) => line.slice(line.indexOf(':') + 1).trim().toLowerCase()));

function ambiguityOf(node: MimeNode, index: number): AmbiguousNode | undefined {
  const headers = node.headers;
  if (!headers) return undefined;
  const encodingLines = headers.get('content-transfer-encoding');
  // Only a multipart node's boundary can read two ways; one encoding line cannot (most nodes stop here).
  if (!(node.multipart && node._boundary) && encodingLines.length < 2) return undefined;
  const numbered = node.partNr === false ? '' : node.partNr.join('.');
  const path = numbered === '' || numbered === 'TEXT' ? 'root' : numbered;
  const typeLines = headers.get('content-type');
  const boundaries = new Set(typeLines.flatMap((line) => [...line.matchAll(/boundary\s*=\s*("[^"]*"|[^;\s]*)/gi)].map((match) => (match[1] ?? '').replace(/^"|"$/g, ''))));
  const encodings = transferEncodings(encodingLines);
  const ambiguity: AmbiguousNode = { node: index, path, reason: '' };
  const reasons: string[] = [];
  if (node.multipart && node._boundary && (boundaries.size > 1 || typeLines.length > 1)) {
    ambiguity.contentType = `${node.contentType || 'multipart/mixed'}; boundary="${node._boundary.toString('latin1')}"`;
    reasons.push(boundaries.size > 1 ? `${boundaries.size} different boundaries` : `${typeLines.length} Content-Type headers`);
  }
  if (encodings.size > 1) {
    ambiguity.encoding = node.encoding || '7bit';
    reasons.push(`${encodings.size} transfer encodings`);
  }
  if (reasons.length === 0) return undefined;
  ambiguity.reason = `${reasons.join(' and ')}; kept the reading that was inspected`;
  return ambiguity;
}

/** Walks an attached message as its decoded bytes arrive; never throws (what stops it is the answer). */
async function walkAttached(feed: DecodedFeed, limits: MimeLimits, depth: number, observer: LeafObserver | undefined): Promise<LeafPart[] | Unreadable> {
  try {
    return await walkLeafParts(feed, limits, depth + 1, [], undefined, observer);
  } catch (error) {
    return { unscannable: error instanceof MimeLimitError ? 'limits' : 'corrupt', reason: `the attached message cannot be walked (${(error as Error).message})` };
  } finally {
    // Whatever stopped the walk, the decoder feeding it must not wait for it.
    feed.close();
  }
}

export interface WholePartSink {
  /** Decoded parts larger than this are handed over as 'too big'. */
  maxBytes: number;
  /** Receives each top-level leaf's whole decoded content; the walk waits while it returns a pending promise. */
  take(part: LeafPart, decoded: Buffer | 'too big'): Promise<void>;
}

/** Resolves once `decoder` took `value` (its write callback), so a paused reader holds the walk back. */
const written = (decoder: Transform, value: Buffer): Promise<void> => new Promise<void>((resolve) => decoder.write(value, () => resolve()));

/** Feeds `value` to a part's decoder: the identity emits it at once (nothing to wait for), a stream as `written`. */
const feedDecoder = (decoder: PartDecoder, value: Buffer): Promise<void> | undefined => {
  if (!(decoder instanceof IdentityDecoder)) return written(decoder, value);
  decoder.write(value);
  return undefined;
};

/**
 * Walks the message and returns its leaf parts. Attached messages (every message/*
 * but message/partial) are walked in turn while they are decoded (mailsplit leaves
 * them closed unless inline), `depth` counting how deep. `observer`, when given, gets
 * every leaf's whole decoded content at every depth.
 */
export async function walkLeafParts(message: MessageSource, limits: MimeLimits, depth = 0, ambiguous: AmbiguousNode[] = [], whole?: WholePartSink, observer?: LeafObserver): Promise<LeafPart[]> {
  const wholeSink = depth === 0 ? whole : undefined;
  const leaves: LeafPart[] = [];
  let nodeIndex = -1;
  let current: PartState | undefined;

  /** A zip or TNEF to list, a message to walk, text that may hold uuencoded files, or a part for the scanner or the observer. */
  const needsWhole = (state: PartState): boolean =>
    wholeSink !== undefined || state.sink !== undefined || state.archive || state.tnef || state.nested !== undefined || state.uu !== undefined;

  /** Decoders whose first output can lie far into the body: fed until the head (or the BinHex file's head) came out. */
  const needsHead = (state: PartState): boolean => (state.binhex !== undefined ? !state.binhex.satisfied : state.uuDecoder !== undefined && state.collectedBytes < SNIFF_BYTES);

  /**
   * Only the first bytes are sniffed: the rest of a large body is not decoded at all, unless the part
   * needs its whole content. A part is a zip when its first decoded bytes say so, so a piece cut to the
   * sniff window is decoded before the rest of its chunk is dropped: a zip found there gets it all.
   */
  const feedBody = async (state: PartState, value: Buffer): Promise<void> => {
    if (state.otherEncodings.length > 0 && state.rawBytes < SNIFF_FEED_BYTES) state.raw.push(value.subarray(0, SNIFF_FEED_BYTES - state.rawBytes));
    state.rawBytes += value.length;
    let offset = 0;
    while (offset < value.length) {
      if (needsWhole(state)) {
        await feedDecoder(state.decoder, offset === 0 ? value : value.subarray(offset));
        return;
      }
      if (state.binhex !== undefined || state.uuDecoder !== undefined) {
        if (needsHead(state)) await feedDecoder(state.decoder, offset === 0 ? value : value.subarray(offset));
        return;
      }
      if (state.fedBytes >= SNIFF_FEED_BYTES || (state.base64 && state.collectedBytes >= SNIFF_BYTES)) return;
      let piece = value.subarray(offset, offset + SNIFF_FEED_BYTES - state.fedBytes);
      // base64 decodes quartet by quartet, so what a slice gives is the start of what the whole piece would
      // give; not across padding, where decoding stops: a slice holding "=" goes with the rest of its piece.
      const slice = piece.subarray(0, BASE64_SLICE_BYTES);
      if (state.base64 && slice.length < piece.length && slice.indexOf(EQUALS_SIGN) === -1) piece = slice;
      offset += piece.length;
      state.fedBytes += piece.length;
      // Resolves once the decoder took the piece and emitted what it decoded (a decoder error surfaces through `done`).
      await feedDecoder(state.decoder, piece);
    }
  };

  const finishCurrent = async (): Promise<void> => {
    if (current === undefined) return;
    const open = current;
    current = undefined;
    open.decoder.end();
    try {
      await open.done;
    } finally {
      open.nested?.feed.end();
    }
    open.sink?.end();
    // One chunk (a small part, or one whose first chunk held the sniff window) is not copied.
    const decoded = open.collected.length === 1 ? (open.collected[0] as Buffer) : Buffer.concat(open.collected);
    open.part.head = decoded.subarray(0, SNIFF_BYTES);
    if (!open.archive && open.collectedBytes < CONTAINER_MAGIC_BYTES) open.archive = looksLikeContainer(decoded);
    if (open.archive) open.part.archive = open.collectedBytes > limits.maxArchiveBytes ? 'too big' : decoded.subarray(0, limits.maxArchiveBytes);
    if (open.tnef) readTnefPart(open.part, decoded, open.collectedBytes, limits);
    if (open.uu) open.part.contained.push(...open.uu.end().map((block) => ({ names: [block.name], head: block.head, form: 'uuencoded in the text' })));
    if (open.uuDecoder !== undefined && open.uuDecoder.name !== '' && !open.part.names.includes(open.uuDecoder.name)) open.part.names.push(open.uuDecoder.name);
    const binhex = open.binhex?.end();
    if (binhex !== undefined) open.part.contained.push({ names: [binhex.name], head: binhex.head, form: 'inside BinHex' });
    const raw = Buffer.concat(open.raw);
    open.part.otherReadings = open.otherEncodings.map((encoding) => ({ encoding, head: decodeAs(encoding, raw).subarray(0, SNIFF_BYTES) }));
    if (open.nested !== undefined) {
      const embedded = await open.nested.walk;
      open.part.embedded = open.nested.feed.tooBig ? { unscannable: 'limits', reason: `an attached message larger than ${limits.maxAttachedMessageBytes} bytes` } : embedded;
    }
    if (wholeSink !== undefined) await wholeSink.take(open.part, open.collectedBytes > wholeSink.maxBytes ? 'too big' : decoded);
  };

  try {
    for await (const chunk of splitMessage(message, limits) as AsyncIterable<SplitterChunk>) {
      if (chunk.type === 'node') {
        await finishCurrent();
        nodeIndex++;
        if (nodeIndex >= limits.maxParts) throw new MimeLimitError(`more than ${limits.maxParts} MIME parts`);
        const node = chunk as MimeNode;
        const nesting = node.partNr === false ? 0 : node.partNr.length;
        if (nesting > limits.maxDepth) throw new MimeLimitError(`MIME nesting deeper than ${limits.maxDepth}`);
        // Only the outermost message's nodes can be written back; an attached message is replaced whole if needed.
        const ambiguity = depth === 0 ? ambiguityOf(node, nodeIndex) : undefined;
        if (ambiguity !== undefined) ambiguous.push(ambiguity);
        if (node.multipart) continue;
        current = openPart(node, nodeIndex);
        leaves.push(current.part);
      } else if (chunk.type === 'body' && current !== undefined) {
        await feedBody(current, chunk.value);
      }
    }
    await finishCurrent();
  } finally {
    // A walk that stopped early leaves no inner walk waiting for bytes.
    current?.nested?.feed.end(new Error('the enclosing message could not be walked'));
  }
  return leaves;

  function openPart(node: MimeNode, index: number): PartState {
    const headers = node.headers;
    const part: LeafPart = {
      node: index,
      path: node.partNr === false || node.partNr.length === 0 ? '1' : node.partNr.join('.'),
      contentType: inDigest(node) ? 'message/rfc822' : node.contentType || 'text/plain',
      names: headers ? namesFromHeaders(headers.get('content-disposition'), headers.get('content-type')) : [],
      head: Buffer.alloc(0),
      contained: [],
      otherReadings: [],
    };
    const encoding = node.encoding || '7bit';
    const uuDecoder = UUENCODE_ENCODINGS.has(encoding) ? new UuDecoder() : undefined;
    // An attached message's decoder is paused by its feed (decoded-feed.ts): mailsplit's stream, which can be.
    const identity = uuDecoder === undefined && headers !== false && encoding !== 'base64' && encoding !== 'quoted-printable' && !isAttachedMessage(part.contentType);
    const stream = identity ? undefined : (uuDecoder ?? (node.getDecoder() as Transform));
    const decoder: PartDecoder = stream ?? new IdentityDecoder();
    const encodings = headers ? [...transferEncodings(headers.get('content-transfer-encoding'))] : [];
    const state: PartState = {
      part,
      decoder,
      collected: [],
      collectedBytes: 0,
      rawBytes: 0,
      fedBytes: 0,
      archive: claimsContainer(part.names, part.contentType),
      tnef: claimsTnef(part.names, part.contentType),
      uu: /^text\//i.test(part.contentType) ? new UuScanner() : undefined,
      uuDecoder,
      binhex: claimsBinHex(part.names, part.contentType) ? new BinHexScanner() : undefined,
      nested: undefined,
      sink: undefined,
      base64: encoding === 'base64',
      otherEncodings: encodings.filter((other) => other !== encoding),
      raw: [],
      done: Promise.resolve(),
    };
    if (isFragment(part.contentType)) part.embedded = FRAGMENT;
    if (isAttachedMessage(part.contentType)) {
      if (depth + 1 > limits.maxDepth) part.embedded = { unscannable: 'limits', reason: `attached messages nested deeper than ${limits.maxDepth}` };
      else if (stream !== undefined) {
        // Always taken: an attached message is never given the identity decoder.
        const feed = new DecodedFeed(stream, limits.maxAttachedMessageBytes);
        state.nested = { feed, walk: walkAttached(feed, limits, depth, observer) };
      }
    } else {
      state.sink = observer?.open(part, depth);
    }
    decoder.on('data', (decoded: Buffer) => {
      // Decided once the bytes that can show a container's magic are in (they are kept anyway: fewer than SNIFF_BYTES).
      if (!state.archive && state.collectedBytes < CONTAINER_MAGIC_BYTES && state.collectedBytes + decoded.length >= CONTAINER_MAGIC_BYTES) {
        state.archive = looksLikeContainer(state.collected.length === 0 ? decoded : Buffer.concat([...state.collected, decoded]));
      }
      if (state.collectedBytes === 0) {
        if (looksLikeTnef(decoded)) state.tnef = true;
        if (state.binhex === undefined && BINHEX_FIRST_LINE.test(decoded.subarray(0, 256).toString('latin1'))) state.binhex = new BinHexScanner();
      }
      state.uu?.write(decoded);
      state.binhex?.write(decoded);
      state.nested?.feed.push(decoded);
      state.sink?.write(decoded);
      const limit = Math.max(state.archive || state.tnef ? limits.maxArchiveBytes + 1 : SNIFF_BYTES, wholeSink ? wholeSink.maxBytes + 1 : 0);
      if (state.collectedBytes >= limit) return;
      state.collected.push(decoded);
      state.collectedBytes += decoded.length;
    });
    state.done = new Promise((resolve, reject) => {
      decoder.once('end', resolve);
      decoder.once('error', (error: Error) => {
        state.nested?.feed.end(error);
        reject(error);
      });
    });
    return state;
  }
}

/** The attachments of a TNEF part, as contained files; a stream that does not parse, or is too big, is unreadable. */
function readTnefPart(part: LeafPart, decoded: Buffer, size: number, limits: MimeLimits): void {
  if (size > limits.maxArchiveBytes) {
    part.unreadable = { unscannable: 'limits', reason: `a TNEF part (winmail.dat) larger than ${limits.maxArchiveBytes} bytes` };
    return;
  }
  try {
    for (const attachment of readTnef(decoded)) part.contained.push({ names: attachment.names, head: attachment.data.subarray(0, SNIFF_BYTES), form: 'inside TNEF' });
  } catch (error) {
    part.unreadable = { unscannable: 'corrupt', reason: `the TNEF part (winmail.dat) cannot be read (${(error as Error).message})` };
  }
}
