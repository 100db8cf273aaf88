/**
 * Containers inside a part: which format (containers/identify.ts), its members
 * read by the format's reader (zip, tar, gzip/bzip2/xz, OLE compound files, and
 * 7z, cab, arj, cpio, ISO/disk images, ar/deb, LHA, WIM, XAR, RPM and RAR through a
 * bounded tool), and each
 * member judged like an attachment: its name classified, its first bytes
 * sniffed, Office macros and embedded objects noted, and a member that is itself
 * a container opened in turn, to `maxDepth`. Office documents (OOXML and
 * OpenDocument are zips, Word/Excel/PowerPoint/Outlook files OLE) are looked
 * into like any container and never flagged for being one.
 *
 * Every bound is shared by the whole tree of one part: depth, members per
 * container, expanded bytes, expansion ratio, time. A container that breaks one,
 * or cannot be read, is unscannable with the reason (member.ts), which the policy
 * maps to an action; limits never mean clean.
 */
import { tmpdir } from 'node:os';
import { classifyName, type ExecutableList, type NameFindingKind } from './filename.js';
import { sniff } from './sniff.js';
import { IDENTIFY_BYTES, formatOfBytes, identifyContainer, type ContainerFormat } from './containers/identify.js';
import { baseName, type ArchiveLimits, type ContainerWalk, type Listing, type Unscannable, type UnscannableReason } from './containers/member.js';
import { listZip } from './containers/zip.js';
import { listTar } from './containers/tar.js';
import { decompressGzip, decompressWithTool } from './containers/compressed.js';
import { listWithTool } from './containers/external.js';
import { listOle } from './office.js';

export type { ArchiveLimits, UnscannableReason } from './containers/member.js';

export type ArchiveFinding =
  | { kind: NameFindingKind | 'executable-content' | 'office-macros' | 'office-embedded'; filename: string; reason: string }
  | { kind: 'unscannable'; unscannable: UnscannableReason; filename: string; reason: string };

/** A part is handed to the container reader when its first bytes, its name or its declared type say container. */
export const claimsContainer = (names: readonly string[], contentType: string): boolean => identifyContainer(Buffer.alloc(0), names, contentType) !== undefined;

export const looksLikeContainer = (head: Buffer): boolean => formatOfBytes(head) !== undefined;

/** The first decoded bytes that show every container magic (fewer than SNIFF_BYTES). */
export const CONTAINER_MAGIC_BYTES = IDENTIFY_BYTES;

/** OOXML keeps a document's VBA project in this member (MS-OFFMACRO2). */
const VBA_PROJECT_MEMBER = /(^|\/)vbaProject\.bin$/i;

export interface ContainerContext {
  list: ExecutableList;
  limits: ArchiveLimits;
  /** Where archives are written for a tool that must seek (default: the system's). */
  tempDir?: string;
}

/** The findings inside one part's bytes, which its names or first bytes say are a container. */
export async function inspectArchive(bytes: Buffer, names: readonly string[], contentType: string, context: ContainerContext): Promise<ArchiveFinding[]> {
  const format = identifyContainer(bytes, names, contentType);
  if (format === undefined) return [];
  const walk: ContainerWalk = { limits: context.limits, deadline: Date.now() + context.limits.maxSeconds * 1000, expandedBytes: 0, tempDir: context.tempDir ?? tmpdir() };
  return inspectContainer(bytes, names[0] || `attachment.${format}`, format, context.list, walk, 1);
}

async function read(bytes: Buffer, name: string, format: ContainerFormat, walk: ContainerWalk): Promise<Listing | Unscannable> {
  switch (format) {
    case 'zip':
      return listZip(bytes, walk);
    case 'tar':
      return listTar(bytes, walk);
    case 'gzip':
      return decompressGzip(bytes, name, walk);
    case 'bzip2':
    case 'xz':
      return decompressWithTool(bytes, format, name, walk);
    case 'ole':
      return listOle(bytes, walk);
    case 'rar':
      return listWithTool(bytes, 'bsdtar', walk);
    case '7z':
    case 'cab':
    case 'arj':
    case 'cpio':
    case 'disk-image':
    case 'ar':
    case 'lzh':
    case 'wim':
    case 'xar':
    case 'rpm':
      return listWithTool(bytes, 'seven-zip', walk);
    case 'ace':
      return { unscannable: 'unsupported', reason: 'ACE archives are not opened' };
  }
}

async function inspectContainer(bytes: Buffer, name: string, format: ContainerFormat, list: ExecutableList, walk: ContainerWalk, depth: number): Promise<ArchiveFinding[]> {
  const unscannable = (found: Unscannable): ArchiveFinding[] => [{ kind: 'unscannable', unscannable: found.unscannable, filename: name, reason: found.reason }];
  if (depth > walk.limits.maxDepth) return unscannable({ unscannable: 'too_deep', reason: `containers nested deeper than ${walk.limits.maxDepth}` });
  if (Date.now() > walk.deadline) return unscannable({ unscannable: 'timeout', reason: `containers took longer than ${walk.limits.maxSeconds} s to read` });
  const listing = await read(bytes, name, format, walk);
  if ('unscannable' in listing) return unscannable(listing);
  const findings: ArchiveFinding[] = (listing.notes ?? []).map((note) => ({ kind: note.kind, filename: note.path === '' ? name : `${name}/${note.path}`, reason: note.reason }));
  for (const member of listing.members) {
    const filename = `${name}/${member.path.replace(/^(\.\/)+/, '')}`;
    if (member.encrypted) findings.push({ kind: 'unscannable', unscannable: 'encrypted', filename, reason: `member ${member.path} is encrypted` });
    for (const finding of classifyName(baseName(member.path), list)) findings.push({ ...finding, filename, reason: `in the archive: ${finding.reason}` });
    const content = sniff(member.head);
    if (content.kind === 'executable') findings.push({ kind: 'executable-content', filename, reason: `in the archive, the content is sniffed as: ${content.format}` });
    if (format === 'zip' && VBA_PROJECT_MEMBER.test(member.path)) {
      findings.push({ kind: 'office-macros', filename, reason: 'the document carries VBA macros' });
      continue;
    }
    if (member.body === 'too big') {
      findings.push({ kind: 'unscannable', unscannable: 'too_large', filename, reason: `a nested container larger than ${walk.limits.maxNestedBytes} bytes` });
    } else if (member.body !== undefined) {
      const nested = identifyContainer(member.body, [baseName(member.path)]);
      if (nested !== undefined) findings.push(...(await inspectContainer(member.body, filename, nested, list, walk, depth + 1)));
    }
  }
  return findings;
}
