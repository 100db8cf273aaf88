/**
 * The benches' 100 KB test message: distinct each time (a fresh Message-ID and random
 * attachment bytes, so no cache on any side helps), CRLF line endings, a short text
 * part and a base64 "PDF" attachment in lines of 76.
 */
import { randomBytes } from 'node:crypto';

export interface FiguresMessageOptions {
  from: string;
  to: string;
  /** Prefix of the Message-ID's local part, naming the bench. */
  idPrefix: string;
}

/** A distinct message of about `totalBytes`. */
export function figuresMessage(index: number, totalBytes: number, options: FiguresMessageOptions): Buffer {
  const head = [
    `From: ${options.from}`,
    `To: ${options.to}`,
    `Subject: quarterly figures ${index + 1}`,
    'Date: Sun, 22 Nov 2026 09:00:00 +0000',
    `Message-ID: <${options.idPrefix}-${index + 1}.${randomBytes(6).toString('hex')}@example.org>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="bench-boundary"',
    '',
    '--bench-boundary',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `The figures for quarter ${index + 1} are attached.`,
    '--bench-boundary',
    `Content-Type: application/pdf; name="figures-${index + 1}.pdf"`,
    `Content-Disposition: attachment; filename="figures-${index + 1}.pdf"`,
    'Content-Transfer-Encoding: base64',
    '',
  ].join('\r\n');
  const tail = '\r\n--bench-boundary--\r\n';
  // base64 is 4/3 of the bytes, plus CRLF per 76 characters.
  const rawBytes = Math.floor(((totalBytes - head.length - tail.length - 2) * 76) / 78 / 4) * 3 - 9;
  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n', 'latin1'), randomBytes(rawBytes)]);
  return Buffer.from(`${head}\r\n${pdf.toString('base64').replace(/.{76}(?!$)/g, '$&\r\n')}${tail}`, 'latin1');
}
