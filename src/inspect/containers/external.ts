/**
 * Formats read by a system tool as a bounded subprocess (tool.ts): 7z, cab, arj,
 * cpio, ISO 9660/UDF and disk images with 7-Zip's `7zz`, RAR with libarchive's
 * `bsdtar` (Debian's 7-Zip has no RAR code). The archive is written to a private
 * temporary file (the tools seek), listed, judged by its declared sizes, then
 * extracted to standard output only: the members arrive concatenated in listing
 * order and are told apart by their listed sizes; output that does not add up to
 * them is `corrupt`. A password is never known: a wrong one is given so that an
 * encrypted archive fails instead of prompting, and any encrypted member makes
 * the archive `encrypted` without extracting it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Expansion, MemberReader, RATIO_FLOOR_BYTES, type ContainerWalk, type Listing, type Member, type Unscannable } from './member.js';
import { runTool, type ToolEnd } from './tool.js';

export const SEVEN_ZIP = '7zz';
export const BSDTAR = 'bsdtar';
/** A listing larger than this is refused as too many members. */
const MAX_LISTING_BYTES = 8 * 1024 * 1024;
/** Given so that 7-Zip fails on encrypted content instead of asking for a password. */
const NO_PASSWORD = '-pmailmoat-has-no-password';

interface Listed {
  path: string;
  size: number;
  encrypted: boolean;
}

/** 7-Zip's technical listing (`l -slt -ba`): blocks of `Key = value` lines, one block per item. */
function parseSevenZipListing(text: string): Listed[] {
  const listed: Listed[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const fields = new Map<string, string>();
    for (const line of block.split(/\r?\n/)) {
      const equals = line.indexOf(' = ');
      if (equals > 0) fields.set(line.slice(0, equals), line.slice(equals + 3));
      else if (line.endsWith(' =')) fields.set(line.slice(0, -2), '');
    }
    const path = fields.get('Path');
    if (path === undefined) continue;
    const folder = fields.get('Folder') === '+' || (fields.get('Attributes') ?? '').startsWith('D');
    if (folder) continue;
    listed.push({ path, size: Number(fields.get('Size') || 0), encrypted: fields.get('Encrypted') === '+' });
  }
  return listed;
}

/** bsdtar's verbose listing (`-tvf`), like `ls -l`: mode, links, owner, group, size, date, name. */
function parseBsdtarListing(text: string): Listed[] {
  const listed: Listed[] = [];
  for (const line of text.split('\n')) {
    const match = /^([-dlbcps])\S*\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+\S+\s(.*)$/.exec(line);
    if (match === null || match[1] !== '-') continue;
    listed.push({ path: (match[3] ?? '').replace(/ link to .*$/, ''), size: Number(match[2]), encrypted: false });
  }
  return listed;
}

const toolFailure = (end: Exclude<ToolEnd, { kind: 'exited' } | { kind: 'stopped' }>, maxExpandedBytes: number): Unscannable => {
  switch (end.kind) {
    case 'timeout':
      return { unscannable: 'timeout', reason: 'the archive took too long to read' };
    case 'too-much-output':
      return { unscannable: 'too_large', reason: `the listing or content exceeds its bounds (${maxExpandedBytes} bytes expanded)` };
    case 'not-installed':
      return { unscannable: 'unsupported', reason: `${end.tool} is not installed` };
    case 'failed':
      return { unscannable: 'corrupt', reason: `the archive tool failed (${end.message})` };
  }
};

/** bsdtar reports each directory of a RAR archive as an error when extracting to standard output: those are no errors. */
const realErrors = (stderr: string): string =>
  stderr
    .split('\n')
    .filter((line) => line.trim() !== '' && !/Can't decompress an entry marked as a directory|Error exit delayed from previous errors/.test(line))
    .join('\n');

/** The tool's complaint, without the temporary file's name (a reason must not depend on where the archive was put). */
const failed = (stderr: string, file: string): Unscannable =>
  /encrypt|password|passphrase/i.test(stderr)
    ? { unscannable: 'encrypted', reason: 'the archive is encrypted' }
    : { unscannable: 'corrupt', reason: `the archive cannot be read (${stderr.replaceAll(file, 'the archive').replace(/\s+/g, ' ').trim().slice(0, 200)})` };

export async function listWithTool(archive: Buffer, tool: 'seven-zip' | 'bsdtar', walk: ContainerWalk): Promise<Listing | Unscannable> {
  const dir = await mkdtemp(join(walk.tempDir, 'mailmoat-archive-'));
  const file = join(dir, 'archive');
  try {
    await writeFile(file, archive, { mode: 0o600 });
    const command = tool === 'seven-zip' ? SEVEN_ZIP : BSDTAR;
    const listing: Buffer[] = [];
    const listed = await runTool({
      command,
      args: tool === 'seven-zip' ? ['l', '-slt', '-ba', '-sccUTF-8', NO_PASSWORD, '--', file] : ['-tvf', file],
      maxOutputBytes: MAX_LISTING_BYTES,
      deadline: walk.deadline,
      onOutput: (chunk) => listing.push(chunk) > 0,
    });
    if (listed.kind === 'too-much-output') return { unscannable: 'too_many_members', reason: `a listing over ${MAX_LISTING_BYTES} bytes` };
    if (listed.kind !== 'exited' && listed.kind !== 'stopped') return toolFailure(listed, walk.limits.maxExpandedBytes);
    if (listed.kind === 'exited' && listed.code !== 0) return failed(listed.stderr, file);
    const text = Buffer.concat(listing).toString('utf8');
    const items = tool === 'seven-zip' ? parseSevenZipListing(text) : parseBsdtarListing(text);
    return await extract(file, archive.length, tool, items, walk);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function extract(file: string, archiveBytes: number, tool: 'seven-zip' | 'bsdtar', items: Listed[], walk: ContainerWalk): Promise<Listing | Unscannable> {
  const { limits } = walk;
  if (items.length > limits.maxMembers) return { unscannable: 'too_many_members', reason: `${items.length} members (limit ${limits.maxMembers})` };
  const declared = items.reduce((sum, item) => sum + item.size, 0);
  if (walk.expandedBytes + declared > limits.maxExpandedBytes) return { unscannable: 'too_large', reason: `declares ${declared} bytes when extracted (limit ${limits.maxExpandedBytes})` };
  if (declared > RATIO_FLOOR_BYTES && declared / Math.max(archiveBytes, 1) > limits.maxExpansionRatio) {
    return { unscannable: 'bomb', reason: `expands ${Math.round(declared / archiveBytes)} times (limit ${limits.maxExpansionRatio}): a decompression bomb` };
  }
  const expansion = new Expansion(archiveBytes);
  const readers = items.map((item) => new MemberReader(item.path, item.size, item.encrypted, walk, expansion));
  if (items.some((item) => item.encrypted) || declared === 0) return { members: readers.map((reader) => reader.finish()) };
  let index = 0;
  let leftInItem = items[0]?.size ?? 0;
  let broken: Unscannable | undefined;
  const end = await runTool({
    command: tool === 'seven-zip' ? SEVEN_ZIP : BSDTAR,
    args: tool === 'seven-zip' ? ['x', '-so', NO_PASSWORD, '--', file] : ['-xOf', file],
    maxOutputBytes: declared,
    deadline: walk.deadline,
    onOutput: (chunk) => {
      let offset = 0;
      while (offset < chunk.length && index < readers.length) {
        if (leftInItem === 0) {
          index++;
          leftInItem = items[index]?.size ?? 0;
          continue;
        }
        const piece = chunk.subarray(offset, offset + leftInItem);
        offset += piece.length;
        leftInItem -= piece.length;
        broken = readers[index]?.push(piece);
        if (broken !== undefined) return false;
      }
      return true;
    },
  });
  if (end.kind === 'too-much-output') return { unscannable: 'corrupt', reason: 'the archive holds more than it declares' };
  if (end.kind === 'stopped') return broken ?? { unscannable: 'corrupt', reason: 'extraction stopped' };
  if (end.kind !== 'exited') return toolFailure(end, limits.maxExpandedBytes);
  if (end.code !== 0 && realErrors(end.stderr) !== '') return failed(realErrors(end.stderr), file);
  const unread = leftInItem + items.slice(index + 1).reduce((sum, item) => sum + item.size, 0);
  if (unread > 0) return { unscannable: 'corrupt', reason: 'the archive holds less than it declares' };
  const members: Member[] = readers.map((reader) => reader.finish());
  return { members };
}
