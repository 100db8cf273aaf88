/**
 * TNEF ([MS-OXTNEF], winmail.dat, application/ms-tnef): the attachments Outlook
 * wraps inside one part and unpacks for its user. A small bounded reader over the
 * decoded part (no maintained npm library reads TNEF): the attribute stream
 * (signature, key, then level/id/length/data/checksum records) gives each
 * attachment's title (attAttachTitle) and data (attAttachData); the attachment's
 * MAPI properties (attAttachment) give its long file name (PR_ATTACH_LONG_FILENAME)
 * and, for an attached object or message (PR_ATTACH_DATA_OBJ), its data, read in
 * turn when it is itself TNEF. Every length is checked against what is left;
 * attachments and nesting are bounded; a record that runs past the end is corrupt
 * (TnefError); bytes after the last record that are no record end the reading.
 */

export interface TnefAttachment {
  /** Every name the attachment carries (title, long and short file name): a client may show any. */
  names: string[];
  data: Buffer;
}

export class TnefError extends Error {}

/** Attachments read from one part, all nesting levels together. */
export const MAX_TNEF_ATTACHMENTS = 1000;
/** Attached TNEF messages inside attached TNEF messages, deeper: corrupt. */
export const MAX_TNEF_DEPTH = 8;
/** MAPI properties in one attAttachment record. */
const MAX_MAPI_PROPERTIES = 10_000;

const TNEF_SIGNATURE = 0x223e9f78;
const LEVEL_MESSAGE = 1;
const LEVEL_ATTACHMENT = 2;
const ATT_ATTACH_RENDDATA = 0x9002;
const ATT_ATTACH_TITLE = 0x8010;
const ATT_ATTACH_DATA = 0x800f;
const ATT_ATTACHMENT = 0x9005;
const PR_ATTACH_DATA_OBJ = 0x3701;
const PR_ATTACH_FILENAME = 0x3704;
const PR_ATTACH_LONG_FILENAME = 0x3707;
const PR_DISPLAY_NAME = 0x3001;
const PT_STRING8 = 0x001e;
const PT_UNICODE = 0x001f;
const PT_BINARY = 0x0102;
const PT_OBJECT = 0x000d;
const MULTI_VALUED = 0x1000;
/** Bytes of a fixed-size MAPI property value by type (in TNEF each is padded to 4). */
const FIXED_SIZES: Record<number, number> = { 0x0000: 4, 0x0001: 4, 0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000a: 4, 0x000b: 4, 0x0014: 8, 0x0040: 8, 0x0048: 16 };
/** A PT_OBJECT value starts with the interface identifier (a GUID). */
const IID_BYTES = 16;

export const looksLikeTnef = (head: Buffer): boolean => head.length >= 4 && head.readUInt32LE(0) === TNEF_SIGNATURE;

export function claimsTnef(names: readonly string[], contentType: string): boolean {
  return /^application\/(vnd\.)?ms-tnef$/i.test(contentType) || names.some((name) => /^winmail\.dat\s*$/i.test(name));
}

class Reader {
  offset = 0;
  constructor(private readonly bytes: Buffer) {}

  take(length: number, what: string): Buffer {
    if (length < 0 || this.offset + length > this.bytes.length) throw new TnefError(`${what} runs past the end`);
    const slice = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  u16(what: string): number {
    return this.take(2, what).readUInt16LE(0);
  }

  u32(what: string): number {
    return this.take(4, what).readUInt32LE(0);
  }

  get left(): number {
    return this.bytes.length - this.offset;
  }
}

const pad4 = (length: number): number => (4 - (length % 4)) % 4;

const text = (value: Buffer, unicode: boolean): string => (unicode ? value.toString('utf16le') : value.toString('latin1')).replace(/\0.*$/s, '');

/** Reads the attachments of a TNEF stream (and of the TNEF messages attached to it). */
export function readTnef(bytes: Buffer, depth = 0, found: TnefAttachment[] = []): TnefAttachment[] {
  if (depth > MAX_TNEF_DEPTH) throw new TnefError(`attached messages nested deeper than ${MAX_TNEF_DEPTH}`);
  const reader = new Reader(bytes);
  if (reader.u32('the signature') !== TNEF_SIGNATURE) throw new TnefError('not a TNEF stream');
  reader.u16('the key');
  let current: { title: string; longName: string; shortName: string; data: Buffer | undefined } | undefined;
  const close = (): void => {
    if (current === undefined) return;
    if (found.length >= MAX_TNEF_ATTACHMENTS) throw new TnefError(`more than ${MAX_TNEF_ATTACHMENTS} attachments`);
    found.push({ names: [...new Set([current.longName, current.shortName, current.title].filter((name) => name !== ''))], data: current.data ?? Buffer.alloc(0) });
    current = undefined;
  };
  while (reader.left > 0) {
    // Some writers leave padding or garbage after the last record: a level that is neither the
    // message's nor an attachment's ends the stream, as it ends Outlook's and MimeKit's reading.
    if (reader.left < 9) break;
    const level = reader.take(1, 'a level')[0];
    if (level !== LEVEL_MESSAGE && level !== LEVEL_ATTACHMENT) break;
    const id = reader.u32('an attribute') & 0xffff;
    const length = reader.u32('a length');
    const data = reader.take(length, 'an attribute');
    reader.u16('a checksum');
    switch (id) {
      case ATT_ATTACH_RENDDATA:
        close();
        current = { title: '', longName: '', shortName: '', data: undefined };
        break;
      case ATT_ATTACH_TITLE:
        if (current !== undefined) current.title = text(data, false);
        break;
      case ATT_ATTACH_DATA:
        if (current !== undefined) current.data = data;
        break;
      case ATT_ATTACHMENT:
        if (current !== undefined) readAttachmentProperties(data, current, depth, found);
        break;
      default:
        break;
    }
  }
  close();
  return found;
}

/** attAttachment: MAPI properties (count, then type, id, [named-property id], value or values). */
function readAttachmentProperties(bytes: Buffer, attachment: { title: string; longName: string; shortName: string; data: Buffer | undefined }, depth: number, found: TnefAttachment[]): void {
  const reader = new Reader(bytes);
  const count = reader.u32('the property count');
  if (count > MAX_MAPI_PROPERTIES) throw new TnefError(`more than ${MAX_MAPI_PROPERTIES} MAPI properties`);
  for (let index = 0; index < count; index++) {
    const type = reader.u16('a property type');
    const id = reader.u16('a property id');
    if (id >= 0x8000) {
      reader.take(16, 'a property set');
      if (reader.u32('a name kind') === 0) reader.u32('a property name id');
      else {
        const nameLength = reader.u32('a property name length');
        reader.take(nameLength + pad4(nameLength), 'a property name');
      }
    }
    const base = type & ~MULTI_VALUED;
    const variable = base === PT_STRING8 || base === PT_UNICODE || base === PT_BINARY || base === PT_OBJECT;
    const values = variable || (type & MULTI_VALUED) !== 0 ? reader.u32('a value count') : 1;
    for (let value = 0; value < values; value++) {
      if (!variable) {
        const size = FIXED_SIZES[base];
        if (size === undefined) throw new TnefError(`unknown MAPI property type 0x${base.toString(16)}`);
        reader.take(size, 'a property value');
        continue;
      }
      const length = reader.u32('a value length');
      const data = reader.take(length, 'a property value');
      reader.take(Math.min(pad4(length), reader.left), 'padding');
      if (value > 0) continue;
      if (id === PR_ATTACH_LONG_FILENAME) attachment.longName = text(data, base === PT_UNICODE);
      if (id === PR_ATTACH_FILENAME) attachment.shortName = text(data, base === PT_UNICODE);
      if (id === PR_DISPLAY_NAME && attachment.title === '') attachment.title = text(data, base === PT_UNICODE);
      if (id === PR_ATTACH_DATA_OBJ) {
        const object = base === PT_OBJECT ? data.subarray(Math.min(IID_BYTES, data.length)) : data;
        if (looksLikeTnef(object)) readTnef(object, depth + 1, found);
        else attachment.data = object;
      }
    }
  }
}
