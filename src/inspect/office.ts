/**
 * OLE compound files (MS-CFB) as containers: Word, Excel and PowerPoint 97-2003
 * documents, Outlook .msg files, Windows Installer packages, and the
 * `oleObject*.bin` / `vbaProject.bin` parts inside OOXML documents.
 *
 * Notes, each with its own policy key: VBA macros (a `Macros`, `_VBA_PROJECT_CUR`
 * or `VBA` storage, a `_VBA_PROJECT` stream: MS-OVBA 2.2), embedded packages (an
 * `\x01Ole10Native` stream: an OLE Package object, a file the reader opens with a
 * double-click), and an installer (the MSI root CLSID). Members: every stream's
 * first bytes (an .msg attachment's data, an embedded file), the file inside
 * each Ole10Native package under its own name, and each .msg attachment's name.
 * An encrypted OOXML document (an `EncryptedPackage` stream, MS-OFFCRYPTO) is
 * `encrypted`.
 */
import { CfbError, CompoundFile, type CfbEntry } from './containers/cfb.js';
import { SNIFF_BYTES } from './sniff.js';
import { identifyContainer } from './containers/identify.js';
import { Expansion, MemberReader, type ContainerWalk, type FormatNote, type Listing, type Member, type Unscannable } from './containers/member.js';

const MACRO_STORAGES = new Set(['macros', '_vba_project_cur', 'vba']);
const MACRO_STREAMS = new Set(['_vba_project']);
const OLE_NATIVE = '\x01Ole10Native';
/** {000C1084-0000-0000-C000-000000000046}, the root CLSID of an .msi (stored little-endian). */
const MSI_CLSID = Buffer.from('84100c0000000000c000000000000046', 'hex');
/** An .msg attachment's long and short file names (MS-OXMSG 2.2.2: PidTagAttachLongFilename, PidTagAttachFilename). */
const MSG_ATTACHMENT_NAME = /^__substg1\.0_370[74]001[EF]$/i;
/** Bytes of an Ole10Native stream header read to find its file name. */
const NATIVE_HEADER_BYTES = 4096;

const parentOf = (path: string): string => path.slice(0, Math.max(path.lastIndexOf('/'), 0));

/** A zero-terminated ANSI string at `offset`, and where the next field starts. */
function cString(bytes: Buffer, offset: number): [string, number] {
  const end = bytes.indexOf(0, offset);
  if (end < 0) throw new CfbError('an Ole10Native string without its end');
  return [bytes.subarray(offset, end).toString('latin1'), end + 1];
}

/**
 * An Ole10Native stream: size, flags, label, source path, two reserved words,
 * temporary path, data size, data (the layout oletools documents). Returns the
 * embedded file's name and where its data lies in the stream.
 */
function nativePackage(header: Buffer): { name: string; dataOffset: number; dataBytes: number } {
  let offset = 4 + 2;
  const [label, afterLabel] = cString(header, offset);
  const [source, afterSource] = cString(header, afterLabel);
  offset = afterSource + 8;
  const [temporary, afterTemporary] = cString(header, offset);
  if (afterTemporary + 4 > header.length) throw new CfbError('an Ole10Native header cut short');
  const dataBytes = header.readUInt32LE(afterTemporary);
  const path = [temporary, source, label].find((text) => text !== '') ?? 'package';
  return { name: path.slice(Math.max(path.lastIndexOf('\\'), path.lastIndexOf('/')) + 1), dataOffset: afterTemporary + 4, dataBytes };
}

export async function listOle(bytes: Buffer, walk: ContainerWalk): Promise<Listing | Unscannable> {
  const { limits } = walk;
  let file: CompoundFile;
  try {
    file = new CompoundFile(bytes, limits.maxMembers);
  } catch (error) {
    if (error instanceof CfbError && /more than/.test(error.message)) return { unscannable: 'too_many_members', reason: error.message };
    return { unscannable: 'corrupt', reason: `not a readable OLE compound file (${(error as Error).message})` };
  }
  const notes: FormatNote[] = [];
  const members: Member[] = [];
  const expansion = new Expansion(bytes.length);
  const root = file.entries[0] as CfbEntry;
  if (root.clsid.equals(MSI_CLSID)) notes.push({ kind: 'executable-content', path: '', reason: 'the content is a Windows Installer package (MSI)' });
  try {
    for (const entry of file.entries) {
      if (Date.now() > walk.deadline) return { unscannable: 'timeout', reason: 'the document took too long to read' };
      const lower = entry.name.toLowerCase();
      if ((entry.type === 'storage' && MACRO_STORAGES.has(lower)) || (entry.type === 'stream' && MACRO_STREAMS.has(lower))) {
        if (!notes.some((note) => note.kind === 'office-macros')) notes.push({ kind: 'office-macros', path: entry.path, reason: 'the document carries VBA macros' });
        continue;
      }
      if (entry.type !== 'stream') continue;
      if (entry.name === 'EncryptedPackage') return { unscannable: 'encrypted', reason: 'the document is encrypted' };
      if (MSG_ATTACHMENT_NAME.test(entry.name)) {
        const raw = file.read(entry, 2048);
        const name = (/001F$/i.test(entry.name) ? raw.toString('utf16le') : raw.toString('latin1')).replace(/\0+$/, '');
        if (name !== '') members.push({ path: `${parentOf(entry.path)}/${name}`, declaredBytes: 0, encrypted: false, head: Buffer.alloc(0) });
        continue;
      }
      if (entry.name === OLE_NATIVE) {
        notes.push({ kind: 'office-embedded', path: entry.path, reason: 'the document embeds a package (an OLE Package object, opened with a double-click)' });
        const native = nativePackage(file.read(entry, NATIVE_HEADER_BYTES));
        const content = file.read(entry, native.dataOffset + Math.min(native.dataBytes, limits.maxNestedBytes + 1)).subarray(native.dataOffset);
        const reader = new MemberReader(`${parentOf(entry.path)}/${native.name}`, native.dataBytes, false, walk, expansion);
        const broken = reader.push(content);
        if (broken !== undefined) return broken;
        members.push(reader.finish());
        continue;
      }
      // A stream is read whole only when it is itself a container (an embedded document or archive).
      const head = file.read(entry, SNIFF_BYTES);
      const content = identifyContainer(head, [entry.name]) === undefined ? head : file.read(entry, limits.maxNestedBytes + 1);
      const reader = new MemberReader(entry.path, entry.size, false, walk, expansion);
      const broken = reader.push(content);
      if (broken !== undefined) return broken;
      members.push(reader.finish());
    }
  } catch (error) {
    return { unscannable: 'corrupt', reason: `the OLE compound file cannot be read (${(error as Error).message})` };
  }
  return { members, notes };
}
