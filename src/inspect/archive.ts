/**
 * Zip archives (APPNOTE.TXT): members are listed from the central directory
 * without extracting them (names, declared sizes, the encryption flag) and each
 * name is classified like an attachment's. A member that is itself a zip is
 * inflated, bounded, and listed in turn up to a depth limit. Office containers
 * (docx, xlsx, odt...) are zips too and are listed like any other, never flagged
 * for being zips.
 *
 * Unscannable, with the reason: an encrypted member (`encrypted`); nesting over
 * the depth limit, too many members, or a declared expansion over the total or
 * the ratio limit, i.e. a bomb (`limits`); a zip that cannot be read (`corrupt`).
 * Nothing is ever extracted whole: only nested zips, each within maxNestedBytes.
 */
import { fromBufferPromise, type Entry, type ZipFile } from 'yauzl';
import { classifyName, type ExecutableList, type NameFindingKind } from './filename.js';

export type UnscannableReason = 'encrypted' | 'limits' | 'corrupt' | 'partial';

export type ArchiveFinding =
  | { kind: NameFindingKind; filename: string; reason: string }
  | { kind: 'unscannable'; unscannable: UnscannableReason; filename: string; reason: string };

export interface ArchiveLimits {
  maxDepth: number;
  maxMembers: number;
  maxExpandedBytes: number;
  maxExpansionRatio: number;
  maxNestedBytes: number;
}

/** Below this declared size an archive's ratio is not judged (a tiny zip of zeros is no bomb). */
const RATIO_FLOOR_BYTES = 1024 * 1024;
const ZIP_MAGIC = 0x504b0304;
const EMPTY_ZIP_MAGIC = 0x504b0506;

export const looksLikeZip = (head: Buffer): boolean => head.length >= 4 && (head.readUInt32BE(0) === ZIP_MAGIC || head.readUInt32BE(0) === EMPTY_ZIP_MAGIC);

const memberName = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

export async function inspectZip(archive: Buffer, archiveName: string, list: ExecutableList, limits: ArchiveLimits, depth = 1): Promise<ArchiveFinding[]> {
  const unscannable = (reason: UnscannableReason, detail: string): ArchiveFinding[] => [{ kind: 'unscannable', unscannable: reason, filename: archiveName, reason: detail }];
  if (depth > limits.maxDepth) return unscannable('limits', `archives nested deeper than ${limits.maxDepth}`);
  let zip: ZipFile;
  try {
    zip = await fromBufferPromise(archive, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false, decodeStrings: true });
  } catch (error) {
    return unscannable('corrupt', `not a readable zip archive (${(error as Error).message})`);
  }
  try {
    if (zip.entryCount > limits.maxMembers) return unscannable('limits', `${zip.entryCount} members (limit ${limits.maxMembers})`);
    const entries = await readEntries(zip);
    const findings: ArchiveFinding[] = [];
    let declared = 0;
    for (const entry of entries) {
      declared += entry.uncompressedSize;
      const name = memberName(entry.fileName);
      if (entry.isEncrypted()) findings.push(...unscannable('encrypted', `member ${entry.fileName} is encrypted`));
      for (const finding of classifyName(name, list)) findings.push({ ...finding, filename: `${archiveName}/${entry.fileName}`, reason: `in the archive: ${finding.reason}` });
    }
    if (declared > limits.maxExpandedBytes) return unscannable('limits', `declares ${declared} bytes when extracted (limit ${limits.maxExpandedBytes})`);
    if (declared > RATIO_FLOOR_BYTES && declared / Math.max(archive.length, 1) > limits.maxExpansionRatio) {
      return unscannable('limits', `expands ${Math.round(declared / archive.length)} times (limit ${limits.maxExpansionRatio}): a zip bomb`);
    }
    for (const entry of entries) {
      if (entry.isEncrypted() || !/\.zip$/i.test(entry.fileName)) continue;
      if (depth + 1 > limits.maxDepth) {
        findings.push(...unscannable('limits', `archives nested deeper than ${limits.maxDepth}`));
        continue;
      }
      const nested = await extractBounded(zip, entry, limits.maxNestedBytes);
      if (typeof nested === 'string') findings.push(...unscannable(nested === 'too big' ? 'limits' : 'corrupt', `nested archive ${entry.fileName}: ${nested}`));
      else findings.push(...(await inspectZip(nested, `${archiveName}/${entry.fileName}`, list, limits, depth + 1)));
    }
    return findings;
  } catch (error) {
    return unscannable('corrupt', `the archive could not be listed (${(error as Error).message})`);
  } finally {
    zip.close();
  }
}

function readEntries(zip: ZipFile): Promise<Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: Entry[] = [];
    zip.on('entry', (entry: Entry) => {
      entries.push(entry);
      zip.readEntry();
    });
    zip.once('end', () => resolve(entries));
    zip.once('error', reject);
    zip.readEntry();
  });
}

/** A member's bytes, or why they could not be had within `maxBytes`. */
async function extractBounded(zip: ZipFile, entry: Entry, maxBytes: number): Promise<Buffer | string> {
  if (entry.uncompressedSize > maxBytes) return 'too big';
  try {
    const stream = await zip.openReadStreamPromise(entry);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        stream.destroy();
        return 'too big';
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  } catch (error) {
    return (error as Error).message;
  }
}
