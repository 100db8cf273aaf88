/**
 * A Windows program carried in each of the forms a mail client opens but a naive
 * MIME walk does not: behind a padded delimiter (RFC 2046 5.1.1), inside a
 * message/news or message/x-anything wrapper, x-uuencode transfer encoding, BinHex
 * 4.0 made by macutils' binhex, and TNEF (winmail.dat) rebuilt from MimeKit's
 * one-file.tnef sample with the program as its attachment. Each message also
 * carries a text part that must arrive.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { corpusFile } from './corpora.js';
import { peBytes } from './pe.js';

export const KEEP_TEXT = 'please keep this text';

const base64Lines = (bytes: Buffer): string => bytes.toString('base64').replace(/.{76}/g, '$&\r\n');

/** BinHex 4.0 text of `data` under `name`, made by macutils' binhex (a data-fork-only file). */
export function binhexOf(name: string, data: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailmoat-binhex-'));
  try {
    writeFileSync(join(dir, name), data);
    return execFileSync('binhex', ['-d', name], { cwd: dir }).toString('latin1').replace(/\r?\n/g, '\r\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** MimeKit's one-file.tnef with its attachment's title and data replaced (lengths and checksums recomputed). */
export function tnefWith(title: string, data: Buffer): Buffer {
  const sample = readFileSync(corpusFile('MimeKit/UnitTests/TestData/tnef/one-file.tnef'));
  const out: Buffer[] = [sample.subarray(0, 6)];
  for (let offset = 6; offset + 9 <= sample.length; ) {
    const attribute = sample.readUInt32LE(offset + 1);
    const length = sample.readUInt32LE(offset + 5);
    let value: Buffer = sample.subarray(offset + 9, offset + 9 + length);
    if ((attribute & 0xffff) === 0x8010) value = Buffer.from(`${title}\0`, 'latin1');
    if ((attribute & 0xffff) === 0x800f) value = data;
    const head = Buffer.alloc(9);
    head[0] = sample[offset] ?? 0;
    head.writeUInt32LE(attribute, 1);
    head.writeUInt32LE(value.length, 5);
    const checksum = Buffer.alloc(2);
    checksum.writeUInt16LE(value.reduce((sum, byte) => (sum + byte) & 0xffff, 0));
    out.push(head, value, checksum);
    offset += 9 + length + 2;
  }
  return Buffer.concat(out);
}

const uuencode = (name: string, data: Buffer): string => {
  const lines = [`begin 644 ${name}`];
  for (let offset = 0; offset < data.length; offset += 45) {
    const slice = data.subarray(offset, offset + 45);
    let line = String.fromCharCode(32 + slice.length);
    for (let i = 0; i < slice.length; i += 3) {
      const [a = 0, b = 0, c = 0] = [slice[i], slice[i + 1], slice[i + 2]];
      for (const six of [a >> 2, ((a & 3) << 4) | (b >> 4), ((b & 15) << 2) | (c >> 6), c & 63]) line += String.fromCharCode(six === 0 ? 96 : 32 + six);
    }
    lines.push(line);
  }
  lines.push('`', 'end');
  return lines.join('\r\n');
};

const mixed = (boundary: string, parts: string[], padding = ''): string =>
  ['From: a@example.org', 'To: b@example.org', 'Subject: forms', 'MIME-Version: 1.0', `Content-Type: multipart/mixed; boundary="${boundary}"`, '', ...parts.flatMap((part) => [`--${boundary}${padding}`, part]), `--${boundary}--${padding}`, ''].join('\r\n');

const TEXT_PART = `Content-Type: text/plain\r\n\r\n${KEEP_TEXT}`;

export interface ProgramForm {
  label: string;
  message: Buffer;
  /** A line of the program's encoded bytes in the message: it must not reach the recipient. */
  marker: string;
}

/** A full line from the middle of an encoded body. */
const markerOf = (encoded: string): string => {
  const lines = encoded.split('\r\n').filter((line) => line.length >= 40);
  return lines[Math.floor(lines.length / 2)] ?? encoded;
};

/** Each form, as a whole message. */
export function programForms(program: Buffer = peBytes()): ProgramForm[] {
  const base64 = base64Lines(program);
  const exePart = `Content-Type: application/octet-stream; name="evil.exe"\r\nContent-Disposition: attachment; filename="evil.exe"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64}`;
  const inner = mixed('inner', [TEXT_PART, exePart]);
  const uu = uuencode('evil.exe', program);
  const hqx = binhexOf('evil.exe', program);
  const tnef = base64Lines(tnefWith('evil.exe', program));
  const form = (label: string, message: string, encoded: string): ProgramForm => ({ label, message: Buffer.from(message, 'latin1'), marker: markerOf(encoded) });
  return [
    form('padded delimiter (spaces)', mixed('pad', [TEXT_PART, exePart], '   '), base64),
    form('padded delimiter (tab)', mixed('pad', [TEXT_PART, exePart], '\t'), base64),
    form('message/news wrapper', mixed('out', [TEXT_PART, `Content-Type: message/news\r\nContent-Disposition: attachment\r\n\r\n${inner}`]), base64),
    form('message/x-anything wrapper', mixed('out', [TEXT_PART, `Content-Type: message/x-anything\r\n\r\n${inner}`]), base64),
    form('x-uuencode', mixed('out', [TEXT_PART, `Content-Type: application/octet-stream; name="evil.exe"\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n${uu}`]), uu),
    form('BinHex', mixed('out', [TEXT_PART, `Content-Type: application/mac-binhex40; name="tool.hqx"\r\n\r\n${hqx}`]), hqx),
    form('TNEF', mixed('out', [TEXT_PART, `Content-Type: application/ms-tnef; name="winmail.dat"\r\nContent-Transfer-Encoding: base64\r\n\r\n${tnef}`]), tnef),
  ];
}
