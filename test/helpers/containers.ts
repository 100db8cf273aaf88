/**
 * Real container files made by real tools (zip, gzip, bzip2, xz, tar, 7zz, gcab, arj,
 * cpio, xorriso, gsf) in a temporary directory, each holding a Windows program under
 * a harmless name, plus clean ones; and a message carrying one as an attachment.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { windowsProgramStub } from '../../src/demo/samples.js';

const run = promisify(execFile);

export const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

export class ContainerMaker {
  private made = 0;

  private constructor(readonly dir: string) {}

  static async create(): Promise<ContainerMaker> {
    return new ContainerMaker(await mkdtemp(join(tmpdir(), 'mailmoat-containers-')));
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  /** A fresh directory holding `files` (name -> bytes), for a tool to pack. */
  async tree(name: string, files: Record<string, Buffer>): Promise<string> {
    const dir = join(this.dir, name);
    await mkdir(dir, { recursive: true });
    for (const [file, bytes] of Object.entries(files)) {
      await mkdir(join(dir, file, '..'), { recursive: true });
      await writeFile(join(dir, file), bytes);
    }
    return dir;
  }

  /** Runs `command` in `cwd` and returns the bytes of `output` (relative to the maker's directory). */
  async make(output: string, command: string, args: string[], cwd: string): Promise<Buffer> {
    await run(command, args, { cwd, maxBuffer: 16 * 1024 * 1024 });
    return readFile(join(this.dir, output));
  }

  /** The file compressed by a single-file compressor (`gzip`, `bzip2`, `xz`), named name + suffix. */
  async compress(tool: 'gzip' | 'bzip2' | 'xz', name: string, bytes: Buffer): Promise<Buffer> {
    const dir = await this.tree(`${tool}-${this.made++}`, { [name]: bytes });
    await run(tool, ['-k', name], { cwd: dir });
    return readFile(join(dir, `${name}.${tool === 'gzip' ? 'gz' : tool === 'bzip2' ? 'bz2' : 'xz'}`));
  }

  path(name: string): string {
    return join(this.dir, name);
  }
}

/** A Windows program (MZ with a PE header) as bytes. */
export const program = (): Buffer => windowsProgramStub();

export function withAttachment(name: string, bytes: Buffer, contentType = 'application/octet-stream'): Buffer {
  return Buffer.from(
    [
      'From: a@example.org',
      'To: b@example.net',
      'Subject: documents',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="zz"',
      '',
      '--zz',
      'Content-Type: text/plain',
      '',
      'see attached',
      '--zz',
      `Content-Type: ${contentType}; name="${name}"`,
      `Content-Disposition: attachment; filename="${name}"`,
      'Content-Transfer-Encoding: base64',
      '',
      bytes.toString('base64').replace(/.{76}/g, '$&\r\n'),
      '--zz--',
      '',
    ].join('\r\n'),
  );
}

/** An Ole10Native stream (an OLE Package object) holding `data` under `name`. */
export function oleNative(name: string, data: Buffer): Buffer {
  const text = (value: string): Buffer => Buffer.concat([Buffer.from(value, 'latin1'), Buffer.from([0])]);
  const body = Buffer.concat([
    Buffer.from([2, 0]),
    text(name),
    text(`C:\\Users\\x\\${name}`),
    Buffer.from([0, 0, 3, 0]),
    Buffer.alloc(4),
    text(`C:\\Temp\\${name}`),
    Buffer.alloc(4),
    data,
  ]);
  body.writeUInt32LE(data.length, body.length - data.length - 4);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(body.length);
  return Buffer.concat([size, body]);
}
