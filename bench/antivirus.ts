/**
 * Antivirus relay benchmark: direct into smtp-sink, through mailmoat with clamd
 * (its default: each part and the message as a whole; and `antivirus.scan: message`,
 * one scan per message as ClamSMTP does), through ClamSMTP (Debian clamsmtp, a
 * non-transparent filter with OutAddress) with the same clamd, and clamd alone
 * (one zINSTREAM per message, no SMTP: the ceiling any proxy can reach), in one run. Every message is 100 KB with a fresh random
 * attachment (clamd caches results by content hash, so repeated content would
 * flatter whoever scans second). clamd runs on a one-signature database the bench
 * builds (EICAR): this measures the proxies' own cost around equal scanning.
 *
 * Usage: node dist/bench/antivirus.js [--messages 400]
 * Needs: postfix (smtp-sink), clamav-daemon, clamsmtp (bash scripts/setup.sh bench installs them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { freePort, listening } from './ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { sendOnce } from '../src/demo/client.js';
import { DotStuffer, END_OF_DATA } from '../src/wire/dot-codec.js';
import { eicarSignature } from '../src/demo/samples.js';
import { ClamdClient } from '../src/inspect/clamd.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '400' } } });
const MESSAGES = Number(values.messages);
const CLI = new URL('../src/cli.js', import.meta.url).pathname;

async function waitFor(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`${what} did not come up`);
}

function freshMessage(): Buffer {
  const attachment = randomBytes(73 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n');
  const content = Buffer.from(
    ['From: bench@example.org', 'To: sink@example.net', 'Subject: antivirus bench', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'data attached', '--b',
      'Content-Type: application/octet-stream; name="data.bin"', 'Content-Transfer-Encoding: base64', '', attachment, '--b--', ''].join('\r\n'),
  );
  const stuffer = new DotStuffer();
  return Buffer.concat([...stuffer.stuff(content), ...stuffer.end(), END_OF_DATA]);
}

/** Sends MESSAGES fresh messages over `sessions` parallel senders; messages per second. */
async function load(port: number, sessions: number): Promise<number> {
  const messages = Array.from({ length: MESSAGES }, freshMessage);
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      for (let index = next++; index < messages.length; index = next++) {
        const reply = await sendOnce(port, { sender: 'bench@example.org', recipients: ['sink@example.net'] }, messages[index] as Buffer);
        if (reply.code !== 250) failed++;
      }
    }),
  );
  if (failed > 0) throw new Error(`${failed} messages were not accepted on port ${port}`);
  return MESSAGES / ((performance.now() - started) / 1000);
}

/** MESSAGES fresh messages straight to clamd, `sessions` at a time: how fast clamd alone scans them. */
async function scanAlone(clamd: ClamdClient, sessions: number): Promise<number> {
  const messages = Array.from({ length: MESSAGES }, freshMessage);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      for (let index = next++; index < messages.length; index = next++) {
        const outcome = await clamd.scan((async function* () { yield messages[index] as Buffer; })());
        if (outcome.kind !== 'clean') throw new Error(`clamd alone: ${JSON.stringify(outcome)}`);
      }
    }),
  );
  return MESSAGES / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  for (const binary of ['/usr/sbin/smtp-sink', '/usr/sbin/clamd', '/usr/sbin/clamsmtpd']) {
    if (!existsSync(binary)) throw new Error(`${binary} is missing: bash scripts/setup.sh bench installs postfix, clamav-daemon and clamsmtp`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-av-bench-'));
  const children: ChildProcess[] = [];
  try {
    await writeFile(join(dir, 'bench.ndb'), eicarSignature('Mailmoat.Bench.EICAR'));
    const clamdSocket = join(dir, 'clamd.sock');
    await writeFile(join(dir, 'clamd.conf'), [`LocalSocket ${clamdSocket}`, `DatabaseDirectory ${dir}`, `TemporaryDirectory ${dir}`, 'Foreground yes', 'AlertEncrypted yes', 'AlertExceedsMax yes', 'MaxThreads 12', ''].join('\n'));
    children.push(spawn('/usr/sbin/clamd', [`--config-file=${join(dir, 'clamd.conf')}`], { stdio: 'ignore' }));
    const sinkPort = await freePort();
    const asRoot = process.getuid?.() === 0;
    children.push(spawn('/usr/sbin/smtp-sink', [...(asRoot ? ['-u', 'nobody'] : []), `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' }));
    const proxyPort = await freePort();
    const wholeOnlyPort = await freePort();
    const policy = (port: number, scan: string): string =>
      `listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:${sinkPort}\nantivirus:\n  clamd: unix:${clamdSocket}\n  scan: ${scan}\nworkers: 1\nadmin:\n  listen: ""\nlimits:\n  max_sessions_per_address: 10000\n  max_connections_per_address_per_minute: 1000000\nlog:\n  level: warn\n`;
    await writeFile(join(dir, 'policy.yaml'), policy(proxyPort, 'parts-and-message'));
    await writeFile(join(dir, 'whole-only.yaml'), policy(wholeOnlyPort, 'message'));
    const clamsmtpPort = await freePort();
    await writeFile(join(dir, 'clamsmtpd.conf'), [`OutAddress: 127.0.0.1:${sinkPort}`, `Listen: 127.0.0.1:${clamsmtpPort}`, `ClamAddress: ${clamdSocket}`, `TempDirectory: ${dir}`, `PidFile: ${join(dir, 'clamsmtpd.pid')}`, 'MaxConnections: 64', ''].join('\n'));
    await waitFor(() => existsSync(clamdSocket), 'clamd');
    children.push(spawn(process.execPath, [CLI, 'start', '--policy', join(dir, 'policy.yaml')], { stdio: 'ignore' }));
    children.push(spawn(process.execPath, [CLI, 'start', '--policy', join(dir, 'whole-only.yaml')], { stdio: 'ignore' }));
    children.push(spawn('/usr/sbin/clamsmtpd', ['-d', '1', '-f', join(dir, 'clamsmtpd.conf')], { stdio: 'ignore' }));
    await waitFor(() => listening(sinkPort), 'smtp-sink');
    await waitFor(() => listening(proxyPort), 'mailmoat');
    await waitFor(() => listening(wholeOnlyPort), 'mailmoat (scan: message)');
    await waitFor(() => listening(clamsmtpPort), 'clamsmtpd');
    for (const port of [proxyPort, wholeOnlyPort, clamsmtpPort]) await load(port, 2); // warm-up

    const rows: string[][] = [['sessions', 'direct', 'mailmoat + clamd', 'ClamSMTP + clamd', 'mailmoat / ClamSMTP', 'mailmoat, scan: message', 'clamd alone (1 scan/msg)']];
    const clamd = new ClamdClient({ kind: 'unix', path: clamdSocket }, 60_000);
    for (const sessions of [1, 10]) {
      const direct = await load(sinkPort, sessions);
      const mailmoat = await load(proxyPort, sessions);
      const clamsmtp = await load(clamsmtpPort, sessions);
      const wholeOnly = await load(wholeOnlyPort, sessions);
      const alone = await scanAlone(clamd, sessions);
      rows.push([String(sessions), `${direct.toFixed(0)} msg/s`, `${mailmoat.toFixed(0)} msg/s`, `${clamsmtp.toFixed(0)} msg/s`, `${(mailmoat / clamsmtp).toFixed(2)}x`, `${wholeOnly.toFixed(0)} msg/s (${(wholeOnly / clamsmtp).toFixed(2)}x)`, `${alone.toFixed(0)} msg/s`]);
    }
    const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
    console.log(`antivirus relay bench: ${MESSAGES} messages of 100 KB with fresh random attachments per run, same clamd, same smtp-sink`);
    for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '));
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await sleep(200);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
