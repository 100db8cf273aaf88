/**
 * Which container a part or member is: by its first bytes (the format's magic
 * number), else, for the few formats that need it, by its name or declared type
 * (an ISO's signature lies at 32 KB, past what is sniffed). Formats: zip (APPNOTE), gzip (RFC 1952), bzip2, xz, POSIX tar
 * (ustar), 7z, RAR 4/5, Microsoft Cabinet, ARJ, cpio, ISO 9660/UDF and disk
 * images, OLE compound files (MS-CFB: .doc, .xls, .ppt, .msg, .msi), Unix ar
 * (and .deb), LHA, WIM, XAR and RPM; and ACE, which is recognised but not opened.
 */
export type ContainerFormat = 'zip' | 'gzip' | 'bzip2' | 'xz' | 'tar' | '7z' | 'rar' | 'cab' | 'arj' | 'cpio' | 'disk-image' | 'ole' | 'ace' | 'ar' | 'lzh' | 'wim' | 'xar' | 'rpm';

/** The fewest first bytes that tell every magic below apart (ustar's lies at 257). */
export const IDENTIFY_BYTES = 512;

const startsWith = (head: Buffer, bytes: readonly number[], offset = 0): boolean =>
  head.length >= offset + bytes.length && bytes.every((byte, index) => head[offset + index] === byte);

const ascii = (text: string): number[] => [...text].map((char) => char.charCodeAt(0));

/** bzip2's stream header with a block size digit, then the first block's magic (a BCD pi) or the end-of-stream magic (sqrt pi). */
const BZIP2 = /^BZh[1-9](1AY&SY|\x17rE8P\x90)/;
/** cpio's portable ASCII headers (new, new with CRC, old) start with a magic and hexadecimal or octal digits. */
const MAX_ARJ_HEADER_BYTES = 2600;
const CPIO_ASCII = /^070(70[12][0-9A-Fa-f]{8}|707[0-7]{6})/;

const MAGICS: readonly { format: ContainerFormat; bytes: readonly number[]; offset?: number }[] = [
  { format: 'zip', bytes: [0x50, 0x4b, 0x03, 0x04] },
  { format: 'zip', bytes: [0x50, 0x4b, 0x05, 0x06] },
  { format: 'gzip', bytes: [0x1f, 0x8b, 0x08] },
  { format: 'xz', bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { format: '7z', bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c] },
  { format: 'rar', bytes: [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07] },
  { format: 'cab', bytes: [0x4d, 0x53, 0x43, 0x46, 0, 0, 0, 0] },
  { format: 'cpio', bytes: [0xc7, 0x71] },
  { format: 'cpio', bytes: [0x71, 0xc7] },
  { format: 'ole', bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1] },
  { format: 'tar', bytes: ascii('ustar'), offset: 257 },
  { format: 'ace', bytes: ascii('**ACE**'), offset: 7 },
  { format: 'ar', bytes: ascii('!<arch>\n') },
  { format: 'lzh', bytes: ascii('-lh'), offset: 2 },
  { format: 'wim', bytes: ascii('MSWIM\0\0\0') },
  { format: 'xar', bytes: ascii('xar!') },
  { format: 'rpm', bytes: [0xed, 0xab, 0xee, 0xdb] },
  { format: 'disk-image', bytes: ascii('conectix') },
  { format: 'disk-image', bytes: ascii('vhdxfile') },
];

const BY_NAME: readonly { format: ContainerFormat; pattern: RegExp }[] = [
  { format: 'zip', pattern: /\.zip$/ },
  { format: 'gzip', pattern: /\.(gz|tgz)$/ },
  { format: 'bzip2', pattern: /\.(bz2|tbz2?)$/ },
  { format: 'xz', pattern: /\.(xz|txz)$/ },
  { format: 'tar', pattern: /\.tar$/ },
  { format: '7z', pattern: /\.7z$/ },
  { format: 'rar', pattern: /\.rar$/ },
  { format: 'cab', pattern: /\.cab$/ },
  { format: 'arj', pattern: /\.arj$/ },
  { format: 'cpio', pattern: /\.cpio$/ },
  { format: 'disk-image', pattern: /\.(iso|img|udf|vhdx?|dmg)$/ },
  { format: 'ace', pattern: /\.ace$/ },
];

const BY_TYPE: readonly { format: ContainerFormat; pattern: RegExp }[] = [
  { format: 'zip', pattern: /^(application|multipart)\/(x-)?zip(-compressed)?$/ },
  { format: 'gzip', pattern: /^application\/(x-)?gzip$/ },
  { format: 'bzip2', pattern: /^application\/x-bzip2?$/ },
  { format: 'xz', pattern: /^application\/x-xz$/ },
  { format: 'tar', pattern: /^application\/x-(g|us)?tar$/ },
  { format: '7z', pattern: /^application\/x-7z-compressed$/ },
  { format: 'rar', pattern: /^application\/(x-rar(-compressed)?|vnd\.rar)$/ },
  { format: 'cab', pattern: /^application\/vnd\.ms-cab-compressed$/ },
  { format: 'arj', pattern: /^application\/x-arj$/ },
  { format: 'cpio', pattern: /^application\/x-cpio$/ },
  { format: 'disk-image', pattern: /^application\/(x-iso9660-image|x-raw-disk-image)$/ },
];

export function formatOfBytes(head: Buffer): ContainerFormat | undefined {
  const found = MAGICS.find((magic) => startsWith(head, magic.bytes, magic.offset))?.format;
  if (found !== undefined) return found;
  const text = head.subarray(0, 16).toString('latin1');
  if (BZIP2.test(text)) return 'bzip2';
  if (CPIO_ASCII.test(text)) return 'cpio';
  // The two ARJ header bytes, then a basic header size of at most 2600 (ARJ's own bound).
  if (head.length >= 4 && head[0] === 0x60 && head[1] === 0xea && head.readUInt16LE(2) > 0 && head.readUInt16LE(2) <= MAX_ARJ_HEADER_BYTES) return 'arj';
  return undefined;
}

/** A name's trailing dots and spaces do not hide its extension (Windows drops them). */
const normalName = (name: string): string => name.toLowerCase().replace(/[\s.]+$/, '');

export function formatOfName(names: readonly string[], contentType = ''): ContainerFormat | undefined {
  for (const name of names) {
    const found = BY_NAME.find((entry) => entry.pattern.test(normalName(name)));
    if (found !== undefined) return found.format;
  }
  return BY_TYPE.find((entry) => entry.pattern.test(contentType.toLowerCase()))?.format;
}

/**
 * Formats a name or type may claim without the bytes agreeing: zip (as mailmoat always has: a
 * part named .zip that is no zip is `corrupt`), tar (old tar has no magic) and disk images (their
 * signatures lie past the first bytes). A part named .gz or .7z without that format's magic opens
 * in no unpacker either: it is judged as the file it is.
 */
const CLAIMED_BY_NAME = new Set<ContainerFormat>(['zip', 'tar', 'disk-image']);

export function identifyContainer(head: Buffer, names: readonly string[], contentType = ''): ContainerFormat | undefined {
  const byBytes = formatOfBytes(head);
  if (byBytes !== undefined) return byBytes;
  const claimed = formatOfName(names, contentType);
  return claimed !== undefined && CLAIMED_BY_NAME.has(claimed) ? claimed : undefined;
}
