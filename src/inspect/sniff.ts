/**
 * Content sniffing: what the decoded first bytes of a part are, whatever its name
 * or declared type says. Executables: PE (MZ with a PE header), ELF, Mach-O (thin
 * and fat, told apart from Java class files), Windows shortcuts (MS-SHLLINK).
 * Zip archives are recognised so the archive lister can look inside.
 */

export type Sniffed = { kind: 'executable'; format: string } | { kind: 'zip' } | { kind: 'other' };

/** Bytes of decoded content the sniffer needs (a PE header is usually within the first 512). */
export const SNIFF_BYTES = 4096;

const LNK_HEADER = Buffer.from('4c0000000114020000000000c000000000000046', 'hex');
const MACHO_MAGICS = new Set([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe]);
/** More fat-binary architectures than this means CAFEBABE is a Java class file, not Mach-O. */
const MAX_FAT_ARCHITECTURES = 30;

export function sniff(head: Buffer): Sniffed {
  if (head.length >= 64 && head[0] === 0x4d && head[1] === 0x5a) {
    const peOffset = head.readUInt32LE(0x3c);
    if (peOffset + 4 <= head.length && head.readUInt32BE(peOffset) === 0x50450000) return { kind: 'executable', format: 'Windows PE executable' };
    // An MZ header whose PE header lies beyond what we read is still a DOS/Windows program.
    if (peOffset + 4 > head.length && peOffset < 64 * 1024 * 1024) return { kind: 'executable', format: 'DOS/Windows MZ executable' };
  }
  if (head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46) return { kind: 'executable', format: 'ELF executable' };
  if (head.length >= 4 && MACHO_MAGICS.has(head.readUInt32BE(0))) return { kind: 'executable', format: 'Mach-O executable' };
  if (head.length >= 8 && head.readUInt32BE(0) === 0xcafebabe && head.readUInt32BE(4) > 0 && head.readUInt32BE(4) <= MAX_FAT_ARCHITECTURES) {
    return { kind: 'executable', format: 'Mach-O universal binary' };
  }
  if (head.length >= LNK_HEADER.length && head.subarray(0, LNK_HEADER.length).equals(LNK_HEADER)) return { kind: 'executable', format: 'Windows shortcut (LNK)' };
  return { kind: 'other' };
}
