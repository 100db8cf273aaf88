/**
 * Zip archives (APPNOTE.TXT) with yauzl: members are listed from the central
 * directory (names, declared sizes, the encryption flag), and the declared
 * sizes are judged before anything is inflated, so a bomb is answered from its
 * directory alone. Then each unencrypted member's first bytes are inflated to
 * be sniffed, and a member that is itself a container is inflated whole, within
 * the walk's bounds (yauzl checks the inflated size against the declared one).
 * Path-traversal names and broken directories are `corrupt`.
 */
import { fromBufferPromise, type Entry, type ZipFile } from 'yauzl';
import { Expansion, MemberReader, RATIO_FLOOR_BYTES, type ContainerWalk, type Listing, type Member, type Unscannable } from './member.js';

export async function listZip(archive: Buffer, walk: ContainerWalk): Promise<Listing | Unscannable> {
  const { limits } = walk;
  let zip: ZipFile;
  try {
    zip = await fromBufferPromise(archive, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false, decodeStrings: true });
  } catch (error) {
    return { unscannable: 'corrupt', reason: `not a readable zip archive (${(error as Error).message})` };
  }
  try {
    if (zip.entryCount > limits.maxMembers) return { unscannable: 'too_many_members', reason: `${zip.entryCount} members (limit ${limits.maxMembers})` };
    const entries = await readEntries(zip);
    const declared = entries.reduce((sum, entry) => sum + entry.uncompressedSize, 0);
    if (declared > limits.maxExpandedBytes) return { unscannable: 'too_large', reason: `declares ${declared} bytes when extracted (limit ${limits.maxExpandedBytes})` };
    if (declared > RATIO_FLOOR_BYTES && declared / Math.max(archive.length, 1) > limits.maxExpansionRatio) {
      return { unscannable: 'bomb', reason: `expands ${Math.round(declared / archive.length)} times (limit ${limits.maxExpansionRatio}): a zip bomb` };
    }
    const expansion = new Expansion(archive.length);
    const members: Member[] = [];
    for (const entry of entries) {
      if (entry.fileName.endsWith('/')) continue;
      if (Date.now() > walk.deadline) return { unscannable: 'timeout', reason: 'the archive took too long to read' };
      const reader = new MemberReader(entry.fileName, entry.uncompressedSize, entry.isEncrypted(), walk, expansion);
      if (!entry.isEncrypted()) {
        const broken = await readMember(zip, entry, reader);
        if (broken !== undefined) return broken;
      }
      members.push(reader.finish());
    }
    return { members };
  } catch (error) {
    return { unscannable: 'corrupt', reason: `the archive could not be listed (${(error as Error).message})` };
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

/** Inflates a member into `reader` until it has what it needs; a broken bound or stream is returned. */
async function readMember(zip: ZipFile, entry: Entry, reader: MemberReader): Promise<Unscannable | undefined> {
  try {
    const stream = await zip.openReadStreamPromise(entry);
    for await (const chunk of stream) {
      const broken = reader.push(chunk as Buffer);
      if (broken !== undefined || reader.satisfied) {
        stream.destroy();
        return broken;
      }
    }
    return undefined;
  } catch (error) {
    return { unscannable: 'corrupt', reason: `member ${entry.fileName} cannot be inflated (${(error as Error).message})` };
  }
}
