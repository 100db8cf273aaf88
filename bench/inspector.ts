/**
 * The inspector alone (no sockets): throughput, and wall and CPU time per message, on
 * the SMTP bench's 100 KB message and on every message of the shared corpora, and
 * peak resident memory while a 100 MB message with an executable part is inspected
 * and rewritten from and to temporary files (the spool keeps large messages on disk).
 *
 * The SMTP bench's 10 KB plain-text message too (its B), whose cost is the inspector's fixed cost.
 *
 * Usage: node dist/bench/inspector.js [--rounds 1000] [--corpora ../shared/corpora] [--messages-only]
 */
import { createWriteStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parsePolicyText } from '../src/config/load.js';
import { createMailInspector } from '../src/inspect/create.js';
import type { MessageSource } from '../src/inspect/api.js';
import { fileSource } from '../src/scan.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '1000' },
    corpora: { type: 'string', default: join(process.cwd(), '..', 'shared', 'corpora') },
    large: { type: 'string' },
    /** Only the A and B messages (no corpora, no 100 MB message). */
    'messages-only': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(values.rounds);
/** Rounds before the timed ones: with fewer, the timed rounds still pay for JIT compilation (about half the CPU time at 20). */
const WARM_UP_ROUNDS = 300;

const memorySource = (bytes: Buffer): MessageSource => ({ size: bytes.length, async *open() { yield bytes; } });

function benchMessage(): Buffer {
  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(73 * 1024)]);
  return Buffer.from(
    ['From: bench@example.org', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'figures attached', '--b',
      'Content-Type: application/pdf; name="figures.pdf"', 'Content-Disposition: attachment; filename="figures.pdf"', 'Content-Transfer-Encoding: base64', '',
      pdf.toString('base64').replace(/.{76}/g, '$&\r\n'), '--b--', ''].join('\r\n'),
  );
}

/** The SMTP bench's message B: 10 KB of plain text, no MIME headers, one part (the inspector's fixed cost per message). */
function plainMessage(): Buffer {
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n';
  return Buffer.from(`From: bench@example.org\r\nTo: sink@example.net\r\nSubject: bench 10 KB\r\n\r\n${line.repeat(Math.ceil((10 * 1024) / line.length))}`, 'latin1');
}

/** Inspects `message` `rounds` times: wall and CPU (user + system) microseconds per message. */
async function timeRounds(inspector: Awaited<ReturnType<typeof createMailInspector>>, message: Buffer, rounds: number): Promise<{ wallUs: number; cpuUs: number }> {
  const started = performance.now();
  // CPU time as well as wall time: on a shared machine the wall time includes waiting for a core.
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < rounds; i++) await inspector.examine(memorySource(message));
  const cpu = process.cpuUsage(cpuBefore);
  return { wallUs: ((performance.now() - started) * 1000) / rounds, cpuUs: (cpu.user + cpu.system) / rounds };
}

function corpusFiles(root: string): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(eml|msg)$|msg_\d+\.txt$/.test(entry)) files.push(path);
    }
  };
  walk(root);
  return files;
}

/** Writes a message of about `megabytes` MB: a small .exe part and a large base64 attachment. */
async function writeLargeMessage(path: string, megabytes: number): Promise<void> {
  const out = createWriteStream(path);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await write('From: bench@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n');
  await write('Content-Type: application/octet-stream; name="tool.exe"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b\r\n');
  await write('Content-Type: application/octet-stream; name="dump.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n');
  const line = `${randomBytes(57).toString('base64')}\r\n`;
  const block = line.repeat(10_000);
  for (let written = 0; written < megabytes * 1024 * 1024; written += block.length) await write(block);
  await write('--b--\r\n');
  out.end();
  await once(out, 'finish');
}

/** In a fresh process, so its peak memory is its own: inspect and rewrite a 100 MB message from and to files. */
async function largeMessage(large: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-inspector-bench-'));
  const inspector = await createMailInspector(parsePolicyText(`spool:\n  dir: ${JSON.stringify(dir)}\n`, 'bench'));
  try {
    const size = (await stat(large)).size;
    const baselineMb = process.memoryUsage().rss / 1024 / 1024;
    const started = performance.now();
    const report = await inspector.examine(fileSource(large, size));
    let forwardedBytes = 0;
    if (report.verdict.action === 'rewrite') {
      for await (const chunk of report.verdict.message.open()) forwardedBytes += chunk.length;
      await report.verdict.message.dispose();
    }
    const seconds = (performance.now() - started) / 1000;
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    console.log(`  ${(size / 1024 / 1024).toFixed(0)} MB message with an executable part: ${report.verdict.action}, ${(forwardedBytes / 1024 / 1024).toFixed(0)} MB written back, ${seconds.toFixed(1)} s (${(size / seconds / 1e6).toFixed(1)} MB/s), peak resident memory ${peakRssMb.toFixed(0)} MB (limit 100 MB), of which ${baselineMb.toFixed(0)} MB was the process with its modules loaded before the message`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-inspector-bench-'));
  const inspector = await createMailInspector(parsePolicyText(`spool:\n  dir: ${JSON.stringify(dir)}\n`, 'bench'));
  try {
    const message = benchMessage();
    const plain = plainMessage();
    for (let i = 0; i < WARM_UP_ROUNDS; i++) {
      await inspector.examine(memorySource(message));
      await inspector.examine(memorySource(plain));
    }
    // A and B alternately, twice: a drift in the machine's load shows as a difference between the two runs.
    const timed: { a: { wallUs: number; cpuUs: number }[]; b: { wallUs: number; cpuUs: number }[] } = { a: [], b: [] };
    for (let run = 0; run < 2; run++) {
      timed.a.push(await timeRounds(inspector, message, ROUNDS));
      timed.b.push(await timeRounds(inspector, plain, ROUNDS));
    }
    const benchMBps = timed.a.map((t) => message.length / t.wallUs);
    const us = (runs: { wallUs: number; cpuUs: number }[], key: 'wallUs' | 'cpuUs'): string => runs.map((t) => t[key].toFixed(0)).join(' / ');
    console.log(`mailmoat inspector bench (node ${process.version})`);
    console.log(`  A: bench message (${(message.length / 1024).toFixed(0)} KB multipart + PDF), 2 x ${ROUNDS} rounds: ${benchMBps.map((v) => v.toFixed(1)).join(' / ')} MB/s, ${us(timed.a, 'wallUs')} µs per message (${us(timed.a, 'cpuUs')} µs CPU)`);
    console.log(`  B: plain text (${(plain.length / 1024).toFixed(0)} KB, one part), 2 x ${ROUNDS} rounds: ${us(timed.b, 'wallUs')} µs per message (${us(timed.b, 'cpuUs')} µs CPU)`);
    if (values['messages-only']) return;

    const files = corpusFiles(values.corpora);
    const corpus = files.map((file) => readFileSync(file));
    const corpusBytes = corpus.reduce((sum, bytes) => sum + bytes.length, 0);
    const started = performance.now();
    for (const bytes of corpus) {
      const report = await inspector.examine(memorySource(bytes));
      if (report.verdict.action === 'rewrite') await report.verdict.message.dispose();
    }
    const corpusSeconds = (performance.now() - started) / 1000;

    console.log(`  corpora: ${files.length} messages, ${(corpusBytes / 1e6).toFixed(1)} MB in ${corpusSeconds.toFixed(2)} s: ${(corpusBytes / corpusSeconds / 1e6).toFixed(1)} MB/s`);
    const large = join(dir, 'large.eml');
    await writeLargeMessage(large, 100);
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--large', large], { encoding: 'utf8' });
    process.stdout.write(child.stdout);
    if (child.status !== 0) throw new Error(`the 100 MB run failed: ${child.stderr}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (values.large !== undefined) await largeMessage(values.large);
else await main();
