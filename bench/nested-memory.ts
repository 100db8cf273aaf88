/**
 * Peak memory of the walk whatever the nesting (issue 16.4); also the child process of
 * test/inspect/nested-memory.test.ts. Builds one message of about `MB` megabytes whose
 * program-free payload sits under `DEPTH` attached messages (message/rfc822 as attachments,
 * which the walk decodes and walks in turn), inspects `COPIES` of it at once with the default
 * policy, and prints JSON: the resident set before, the peak (getrusage maxrss), the verdicts.
 *
 * Usage: node --expose-gc dist/bench/nested-memory.js [MB=20] [DEPTH=19] [COPIES=1]
 */
import { randomBytes } from 'node:crypto';
import { parsePolicyText } from '../src/config/load.js';
import { createMailInspector } from '../src/inspect/create.js';
import type { MessageSource } from '../src/inspect/api.js';

const [mb = '20', depthText = '19', copiesText = '1'] = process.argv.slice(2);
const DEPTH = Number(depthText);
const payload = randomBytes(Math.floor((Number(mb) * 1024 * 1024 * 3) / 4)).toString('base64').replace(/.{76}/g, '$&\r\n');
const pieces: Buffer[] = [
  Buffer.from('Content-Type: multipart/mixed; boundary="leaf"\r\n\r\n--leaf\r\nContent-Type: text/plain\r\n\r\nthe data\r\n--leaf\r\nContent-Type: application/octet-stream; name="data.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'),
  Buffer.from(payload, 'latin1'),
  Buffer.from('\r\n--leaf--\r\n'),
];
for (let level = 0; level < DEPTH; level++) {
  pieces.unshift(Buffer.from(`From: a@example.org\r\nSubject: level ${level}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="l${level}"\r\n\r\n--l${level}\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--l${level}\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename="fwd${level}.eml"\r\n\r\n`));
  pieces.push(Buffer.from(`\r\n--l${level}--\r\n`));
}
const size = pieces.reduce((sum, piece) => sum + piece.length, 0);
const source: MessageSource = {
  size,
  async *open() {
    // 64 KB chunks, as the spool reads them.
    for (const piece of pieces) for (let offset = 0; offset < piece.length; offset += 65536) yield piece.subarray(offset, offset + 65536);
  },
};
const inspector = await createMailInspector(parsePolicyText('', 'probe'));
global.gc?.();
const before = process.memoryUsage().rss;
const reports = await Promise.all(Array.from({ length: Number(copiesText) }, () => inspector.examine(source)));
const peak = process.resourceUsage().maxRSS * 1024;
await inspector.close();
process.stdout.write(JSON.stringify({ size, before, peak, verdicts: reports.map((report) => report.verdict.action), findings: reports.flatMap((report) => report.findings.map((finding) => finding.kind)) }));
