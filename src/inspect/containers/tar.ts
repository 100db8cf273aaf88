/**
 * POSIX tar (ustar, pax and GNU extensions) with tar-stream: every regular file's
 * first bytes are kept to be sniffed, and a member that is itself a container is
 * kept whole, within the walk's bounds. Links, directories and devices carry no
 * content. A header that does not check out is `corrupt`.
 */
import { extract } from 'tar-stream';
import { Expansion, MemberReader, type ContainerWalk, type Listing, type Member, type Unscannable } from './member.js';

const CONTENT_TYPES = new Set(['file', 'contiguous-file']);

export async function listTar(archive: Buffer, walk: ContainerWalk): Promise<Listing | Unscannable> {
  const { limits } = walk;
  const extractor = extract();
  extractor.end(archive);
  const expansion = new Expansion(archive.length);
  const members: Member[] = [];
  let entries = 0;
  try {
    for await (const entry of extractor) {
      entries++;
      if (entries > limits.maxMembers) return { unscannable: 'too_many_members', reason: `more than ${limits.maxMembers} members` };
      if (Date.now() > walk.deadline) return { unscannable: 'timeout', reason: 'the archive took too long to read' };
      const { header } = entry;
      if (!CONTENT_TYPES.has(header.type ?? 'file')) {
        entry.resume();
        continue;
      }
      const reader = new MemberReader(header.name, header.size ?? 0, false, walk, expansion);
      for await (const chunk of entry) {
        const broken = reader.push(chunk as Buffer);
        if (broken !== undefined) return broken;
      }
      members.push(reader.finish());
    }
    return { members };
  } catch (error) {
    return { unscannable: 'corrupt', reason: `not a readable tar archive (${(error as Error).message})` };
  } finally {
    extractor.destroy();
  }
}
