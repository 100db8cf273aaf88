/**
 * A small bounded reader of OLE compound files (MS-CFB): the directory (storage
 * and stream names with their paths) and a stream's first bytes. No maintained
 * npm library reads hostile files within caller-set bounds, so this one follows
 * MS-CFB 2.2-2.6 directly: every sector chain is followed at most once per
 * sector (a loop is `corrupt`), the directory is capped by the caller, and a
 * stream is read only up to the bytes asked for.
 */
const SIGNATURE = Buffer.from('d0cf11e0a1b11ae1', 'hex');
const HEADER_BYTES = 512;
const DIFAT_IN_HEADER = 109;
const DIRECTORY_ENTRY_BYTES = 128;
const END_OF_CHAIN = 0xfffffffe;
/** Sector numbers from MAXREGSECT up are markers (free, end of chain, FAT, DIFAT), not sectors. */
const MAX_REGULAR_SECTOR = 0xfffffffa;
const NO_STREAM = 0xffffffff;

export type CfbEntryType = 'storage' | 'stream' | 'root';

export interface CfbEntry {
  name: string;
  /** Storage names joined by `/`, from below the root. */
  path: string;
  type: CfbEntryType;
  clsid: Buffer;
  start: number;
  size: number;
}

export class CfbError extends Error {}

export class CompoundFile {
  readonly entries: CfbEntry[] = [];
  private readonly sectorBytes: number;
  private readonly miniSectorBytes: number;
  private readonly miniCutoff: number;
  private readonly fat: number[] = [];
  private miniFat: number[] | undefined;
  private miniStream: Buffer | undefined;

  constructor(private readonly bytes: Buffer, maxEntries: number) {
    if (bytes.length < HEADER_BYTES || !bytes.subarray(0, 8).equals(SIGNATURE)) throw new CfbError('not an OLE compound file');
    const sectorShift = bytes.readUInt16LE(0x1e);
    const miniShift = bytes.readUInt16LE(0x20);
    if ((sectorShift !== 9 && sectorShift !== 12) || miniShift !== 6) throw new CfbError('unknown sector sizes');
    this.sectorBytes = 1 << sectorShift;
    this.miniSectorBytes = 1 << miniShift;
    this.miniCutoff = bytes.readUInt32LE(0x38);
    this.readFat(bytes.readUInt32LE(0x2c), bytes.readUInt32LE(0x44));
    this.readDirectory(bytes.readUInt32LE(0x30), maxEntries);
  }

  private get sectorCount(): number {
    return Math.max(0, Math.ceil((this.bytes.length - this.sectorBytes) / this.sectorBytes));
  }

  private sector(index: number): Buffer {
    if (index >= this.sectorCount) throw new CfbError(`sector ${index} lies beyond the file`);
    const start = (index + 1) * this.sectorBytes;
    return this.bytes.subarray(start, start + this.sectorBytes);
  }

  private readFat(fatSectors: number, firstDifat: number): void {
    const locations: number[] = [];
    for (let index = 0; index < DIFAT_IN_HEADER; index++) locations.push(this.bytes.readUInt32LE(0x4c + index * 4));
    const seen = new Set<number>();
    for (let difat = firstDifat; difat < MAX_REGULAR_SECTOR; ) {
      if (seen.has(difat)) throw new CfbError('the DIFAT chain loops');
      seen.add(difat);
      const sector = this.sector(difat);
      const perSector = this.sectorBytes / 4 - 1;
      for (let index = 0; index < perSector; index++) locations.push(sector.readUInt32LE(index * 4));
      difat = sector.readUInt32LE(perSector * 4);
    }
    for (const location of locations.slice(0, Math.min(fatSectors, this.sectorCount))) {
      if (location >= MAX_REGULAR_SECTOR) continue;
      const sector = this.sector(location);
      for (let offset = 0; offset < sector.length; offset += 4) this.fat.push(sector.readUInt32LE(offset));
    }
  }

  /** The sectors of a chain, in order; `table` is the FAT or the mini FAT. */
  private chain(start: number, table: readonly number[], maxLength: number): number[] {
    const sectors: number[] = [];
    const seen = new Set<number>();
    for (let sector = start; sector !== END_OF_CHAIN && sectors.length < maxLength; ) {
      if (sector >= MAX_REGULAR_SECTOR || sector >= table.length || seen.has(sector)) throw new CfbError('a broken sector chain');
      seen.add(sector);
      sectors.push(sector);
      sector = table[sector] as number;
    }
    return sectors;
  }

  private readDirectory(firstSector: number, maxEntries: number): void {
    const sectors = this.chain(firstSector, this.fat, this.sectorCount);
    const perSector = this.sectorBytes / DIRECTORY_ENTRY_BYTES;
    if (sectors.length * perSector > maxEntries * 2 + perSector) throw new CfbError(`more than ${maxEntries} directory entries`);
    const directory = Buffer.concat(sectors.map((sector) => this.sector(sector)));
    const raw = (index: number): Buffer | undefined => (index < directory.length / DIRECTORY_ENTRY_BYTES ? directory.subarray(index * DIRECTORY_ENTRY_BYTES, (index + 1) * DIRECTORY_ENTRY_BYTES) : undefined);
    const root = raw(0);
    if (root === undefined || root[0x42] !== 5) throw new CfbError('no root entry');
    this.entries.push(this.entry(root, ''));
    const visited = new Set<number>([0]);
    const pending: { index: number; parent: string }[] = [{ index: root.readUInt32LE(0x4c), parent: '' }];
    while (pending.length > 0) {
      const { index, parent } = pending.pop() as { index: number; parent: string };
      if (index === NO_STREAM) continue;
      const bytes = raw(index);
      if (bytes === undefined || visited.has(index)) throw new CfbError('a broken directory tree');
      visited.add(index);
      if (this.entries.length > maxEntries) throw new CfbError(`more than ${maxEntries} directory entries`);
      const entry = this.entry(bytes, parent);
      this.entries.push(entry);
      pending.push({ index: bytes.readUInt32LE(0x44), parent }, { index: bytes.readUInt32LE(0x48), parent });
      if (entry.type === 'storage') pending.push({ index: bytes.readUInt32LE(0x4c), parent: entry.path });
    }
  }

  private entry(bytes: Buffer, parent: string): CfbEntry {
    const nameBytes = Math.min(Math.max(bytes.readUInt16LE(0x40) - 2, 0), 62);
    const name = bytes.subarray(0, nameBytes).toString('utf16le');
    const kind = bytes[0x42];
    const type: CfbEntryType = kind === 5 ? 'root' : kind === 1 ? 'storage' : 'stream';
    return { name, path: parent === '' ? name : `${parent}/${name}`, type, clsid: Buffer.from(bytes.subarray(0x50, 0x60)), start: bytes.readUInt32LE(0x74), size: bytes.readUInt32LE(0x78) };
  }

  /** The first `maxBytes` of a stream (all of it when shorter). */
  read(entry: CfbEntry, maxBytes: number): Buffer {
    const wanted = Math.min(entry.size, maxBytes);
    if (wanted === 0) return Buffer.alloc(0);
    if (entry.size < this.miniCutoff && entry.type === 'stream') {
      const mini = this.ministream();
      const sectors = this.chain(entry.start, this.miniFat ?? [], Math.ceil(wanted / this.miniSectorBytes));
      return Buffer.concat(sectors.map((sector) => mini.subarray(sector * this.miniSectorBytes, (sector + 1) * this.miniSectorBytes))).subarray(0, wanted);
    }
    const sectors = this.chain(entry.start, this.fat, Math.ceil(wanted / this.sectorBytes));
    return Buffer.concat(sectors.map((sector) => this.sector(sector))).subarray(0, wanted);
  }

  private ministream(): Buffer {
    if (this.miniStream === undefined) {
      const root = this.entries[0] as CfbEntry;
      const miniFatSectors = this.chain(this.bytes.readUInt32LE(0x3c), this.fat, this.sectorCount);
      this.miniFat = [];
      for (const sector of miniFatSectors) {
        const bytes = this.sector(sector);
        for (let offset = 0; offset < bytes.length; offset += 4) this.miniFat.push(bytes.readUInt32LE(offset));
      }
      this.miniStream = root.start >= MAX_REGULAR_SECTOR ? Buffer.alloc(0) : Buffer.concat(this.chain(root.start, this.fat, this.sectorCount).map((sector) => this.sector(sector)));
    }
    return this.miniStream;
  }
}
