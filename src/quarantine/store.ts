/**
 * The quarantine: the original bytes of every message mailmoat rewrote, refused or
 * tempfailed, with a metadata record, so an administrator can look at it and
 * release it (Mailtraq's quarantine mailbox and resubmit, MailScanner's quarantine).
 *
 * Each entry is two files in `quarantine.dir`: ID.eml (the message exactly as it
 * arrived, unstuffed) and ID.json (the record). Both are written atomically: to a
 * temporary name, fsync'ed, renamed, and the folder fsync'ed; the record is written
 * last, so an entry without its record (a crash in between) is never listed and
 * is removed by the next purge. IDs sort by time. A temporary name carries its
 * writer's pid (`.tmp-<pid>-<name>`): the purge (at start, then hourly) removes those
 * of a writer that is gone at once, the others when past keep_for.
 *
 * In a fleet an index collaborator (state/quarantine-index.ts) learns each stored
 * record and each removed entry, so every node can list them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { MessageSource } from '../inspect/api.js';
import { isAlive } from '../process-alive.js';

/** An entry's .eml is written just before its record: younger than this, a lone .eml may be a write in progress. */
const RECORD_PENDING_GRACE_MS = 60_000;
const TEMPORARY_NAME = /^\.tmp-(?:(\d+)-)?/;

export interface QuarantineFinding {
  part: string;
  filename: string;
  kind: string;
  reason: string;
}

export interface QuarantineRecord {
  id: string;
  /** ISO 8601, when the message was quarantined. */
  time: string;
  session: string;
  protocol: 'smtp' | 'pop3';
  direction: 'inbound' | 'outbound';
  /** SMTP: the envelope as the upstream accepted it. POP3: no sender; the recipient is the login name when it is an address. */
  sender: string;
  recipients: string[];
  /** POP3: the login name and the message number. */
  user?: string;
  size: number;
  /** What mailmoat did: rewrite (delivered with parts replaced), tempfail or reject. */
  action: 'rewrite' | 'tempfail' | 'reject';
  reason: string;
  findings: QuarantineFinding[];
}

export type NewRecord = Omit<QuarantineRecord, 'id' | 'time' | 'size'>;

/** A message with findings, as sessions report it (for alerts and metrics): the record's fields and its quarantine id. */
export type FlaggedMessage = NewRecord & { time: string; quarantine?: string };

/** Entry IDs are made here and nowhere else: a time stamp and 8 random hex digits. */
const ID_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

/** Who else learns of entries (the fleet's index); it never fails a store. */
export interface QuarantineIndexer {
  add(record: QuarantineRecord): Promise<void>;
  remove(id: string): Promise<void>;
}

export class QuarantineStore {
  constructor(
    readonly dir: string,
    private readonly now: () => Date = () => new Date(),
    private readonly index: QuarantineIndexer | undefined = undefined,
  ) {}

  /** Stores the original and its record; resolves with the record once both are on disk. */
  async store(message: MessageSource, fields: NewRecord): Promise<QuarantineRecord> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const time = this.now();
    const id = `${time.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
    const size = await this.writeAtomically(`${id}.eml`, message.open());
    const record: QuarantineRecord = { id, time: time.toISOString(), size, ...fields };
    await this.writeAtomically(`${id}.json`, [Buffer.from(`${JSON.stringify(record, null, 2)}\n`, 'utf8')]);
    await this.index?.add(record);
    return record;
  }

  /** Every complete entry, oldest first. */
  async list(): Promise<QuarantineRecord[]> {
    const names = await this.names();
    const records: QuarantineRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const record = await this.show(name.slice(0, -5)).catch(() => undefined);
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  async show(id: string): Promise<QuarantineRecord> {
    return JSON.parse(await this.read(id, 'json').then((bytes) => bytes.toString('utf8'))) as QuarantineRecord;
  }

  /** The original message bytes of an entry. */
  async original(id: string): Promise<Buffer> {
    return this.read(id, 'eml');
  }

  async delete(id: string): Promise<void> {
    const record = this.path(id, 'json');
    await this.read(id, 'json');
    await rm(record, { force: true });
    await rm(this.path(id, 'eml'), { force: true });
    await this.index?.remove(id);
  }

  /** Removes entries older than `maxAgeMs` (and leftovers of interrupted writes); returns how many entries went. */
  async purge(maxAgeMs: number): Promise<number> {
    const limit = this.now().getTime() - maxAgeMs;
    let removed = 0;
    const names = await this.names();
    const ids = new Set(names.filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -5)));
    for (const name of names) {
      const path = join(this.dir, name);
      const temporary = TEMPORARY_NAME.exec(name);
      if (temporary !== null) {
        const writer = temporary[1] === undefined ? undefined : Number(temporary[1]);
        const abandoned = writer !== undefined && writer !== process.pid && !isAlive(writer);
        if (abandoned || (await stat(path)).mtimeMs < limit) await rm(path, { force: true });
        continue;
      }
      const id = name.replace(/\.(eml|json)$/, '');
      if (!ID_PATTERN.test(id)) continue;
      const mtimeMs = (await stat(path)).mtimeMs;
      const orphan = name.endsWith('.eml') && !ids.has(id) && mtimeMs < this.now().getTime() - RECORD_PENDING_GRACE_MS;
      if (mtimeMs >= limit && !orphan) continue;
      await rm(path, { force: true });
      if (!name.endsWith('.json')) continue;
      removed++;
      await this.index?.remove(id);
    }
    return removed;
  }

  private async names(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  private async read(id: string, extension: 'eml' | 'json'): Promise<Buffer> {
    try {
      return await readFile(this.path(id, extension));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`no quarantine entry ${id} in ${this.dir}`);
      throw error;
    }
  }

  private path(id: string, extension: 'eml' | 'json'): string {
    if (!ID_PATTERN.test(id)) throw new Error(`not a quarantine id: ${id}`);
    return join(this.dir, `${id}.${extension}`);
  }

  /** Writes `name` through a temporary file: write, fsync, rename, fsync the folder. Returns the bytes written. */
  private async writeAtomically(name: string, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<number> {
    const temporary = join(this.dir, `.tmp-${process.pid}-${name}`);
    let written = 0;
    try {
      const handle = await open(temporary, 'wx', 0o600);
      try {
        for await (const chunk of chunks) {
          await handle.write(chunk);
          written += chunk.length;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, join(this.dir, name));
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    const folder = await open(this.dir, 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
    return written;
  }
}
