/**
 * `mailmoat scan`: the proxy's inspector, offline, on .eml files. One result per
 * file: a readable line, or with --json one JSON object per line
 * ({file, action, findings: [{part, filename, kind, reason}]}). With --out-dir,
 * DIR/<base name> receives exactly the bytes that would be forwarded (the input
 * itself for `pass`; nothing for tempfail/reject, which forward nothing).
 * These shapes are a public interface.
 */
import { createReadStream } from 'node:fs';
import { stat, writeFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Writable } from 'node:stream';
import type { MessageSource } from './inspect/api.js';
import type { MailInspector } from './inspect/inspector.js';

export interface ScanOptions {
  json: boolean;
  outDir?: string;
}

/** A message file as a MessageSource, read anew on each open(). */
export function fileSource(path: string, size: number): MessageSource {
  return {
    size,
    async *open() {
      for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) yield chunk as Buffer;
    },
  };
}

async function collect(source: MessageSource): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source.open()) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Scans every file; resolves false if a file could not be read or written (exit code 1). */
export async function scanFiles(inspector: MailInspector, files: readonly string[], options: ScanOptions, out: Writable, err: Writable): Promise<boolean> {
  let ok = true;
  if (options.outDir !== undefined) await mkdir(options.outDir, { recursive: true });
  for (const file of files) {
    try {
      const source = fileSource(file, (await stat(file)).size);
      const { verdict, findings } = await inspector.examine(source);
      if (options.outDir !== undefined && (verdict.action === 'pass' || verdict.action === 'rewrite')) {
        const forwarded = verdict.action === 'pass' ? source : verdict.message;
        await writeFile(join(options.outDir, basename(file)), await collect(forwarded));
      }
      if (verdict.action === 'rewrite') await verdict.message.dispose();
      const result = { file, action: verdict.action, findings };
      if (options.json) out.write(`${JSON.stringify(result)}\n`);
      else {
        const detail = findings.map((finding) => `part ${finding.part} ${finding.filename ? `"${finding.filename}" ` : ''}${finding.kind}: ${finding.reason}`).join('; ');
        out.write(`${file}: ${verdict.action}${detail ? ` (${detail})` : ''}\n`);
      }
    } catch (error) {
      ok = false;
      err.write(`mailmoat scan: ${file}: ${(error as Error).message}\n`);
    }
  }
  return ok;
}
