/**
 * Single-file compression: gzip (RFC 1952) with Node's zlib, bzip2 and xz with
 * the system's `bzip2 -dc` and `xz -dc` as bounded subprocesses (tool.ts). The
 * one member is named by the gzip header's FNAME when there is one (the name an
 * unpacker gives the file), else by the archive's name without its suffix. The
 * decompressed stream is read to its end (only its first bytes are kept) so that
 * its expansion is judged, and cut off at the walk's bounds: a bomb is known
 * from its first megabytes.
 */
import { createGunzip } from 'node:zlib';
import { Expansion, MemberReader, baseName, type ContainerWalk, type Listing, type Unscannable } from './member.js';
import { runTool } from './tool.js';

const GZIP_FLAG_EXTRA = 0x04;
const GZIP_FLAG_NAME = 0x08;
const GZIP_HEADER_BYTES = 10;
/** An FNAME longer than this is not taken as a name. */
const MAX_GZIP_NAME_BYTES = 1024;

/** The original file name a gzip header carries (RFC 1952 2.3.1), if any. */
function gzipName(archive: Buffer): string | undefined {
  const flags = archive[3] ?? 0;
  if ((flags & GZIP_FLAG_NAME) === 0) return undefined;
  let offset = GZIP_HEADER_BYTES;
  if ((flags & GZIP_FLAG_EXTRA) !== 0) offset += 2 + (archive.length >= offset + 2 ? archive.readUInt16LE(offset) : 0);
  const end = archive.indexOf(0, offset);
  if (end < 0 || end - offset > MAX_GZIP_NAME_BYTES) return undefined;
  return archive.subarray(offset, end).toString('latin1');
}

const withoutSuffix = (name: string): string => {
  const base = baseName(name).replace(/[\s.]+$/, '');
  if (/\.t(gz|bz2?|xz)$/i.test(base)) return base.replace(/\.t(gz|bz2?|xz)$/i, '.tar');
  return /\.(gz|bz2|xz)$/i.test(base) ? base.replace(/\.(gz|bz2|xz)$/i, '') : `${base || 'archive'}.uncompressed`;
};

export async function decompressGzip(archive: Buffer, name: string, walk: ContainerWalk): Promise<Listing | Unscannable> {
  const reader = new MemberReader(gzipName(archive) ?? withoutSuffix(name), 0, false, walk, new Expansion(archive.length));
  const gunzip = createGunzip();
  gunzip.end(archive);
  try {
    for await (const chunk of gunzip) {
      const broken = reader.push(chunk as Buffer);
      if (broken !== undefined) return broken;
      if (Date.now() > walk.deadline) return { unscannable: 'timeout', reason: 'decompression took too long' };
    }
  } catch (error) {
    return { unscannable: 'corrupt', reason: `not readable gzip data (${(error as Error).message})` };
  } finally {
    gunzip.destroy();
  }
  return { members: [reader.finish()] };
}

export async function decompressWithTool(archive: Buffer, format: 'bzip2' | 'xz', name: string, walk: ContainerWalk): Promise<Listing | Unscannable> {
  const reader = new MemberReader(withoutSuffix(name), 0, false, walk, new Expansion(archive.length));
  let broken: Unscannable | undefined;
  const end = await runTool({
    command: format,
    args: ['-dc'],
    input: archive,
    // The walk's own bound is what stops the tool; this one only backs it up.
    maxOutputBytes: walk.limits.maxExpandedBytes + 1,
    deadline: walk.deadline,
    onOutput: (chunk) => {
      broken = reader.push(chunk);
      return broken === undefined;
    },
  });
  switch (end.kind) {
    case 'exited':
      if (end.code !== 0) return { unscannable: 'corrupt', reason: `not readable ${format} data (${end.stderr.trim().slice(0, 200)})` };
      return { members: [reader.finish()] };
    case 'stopped':
      return broken ?? { members: [reader.finish()] };
    case 'timeout':
      return { unscannable: 'timeout', reason: 'decompression took too long' };
    case 'too-much-output':
      return { unscannable: 'too_large', reason: `expands to more than ${walk.limits.maxExpandedBytes} bytes` };
    case 'not-installed':
      return { unscannable: 'unsupported', reason: `${end.tool} is not installed` };
    case 'failed':
      return { unscannable: 'corrupt', reason: `${format} failed (${end.message})` };
  }
}
