/**
 * Real Postfix smtp-sink as an upstream, started by the test on a free loopback
 * port and dumping each transaction (-d) to a temporary folder. smtp-sink writes
 * dumps with LF line endings and prepends its own X-* and Received headers;
 * `messages()` strips those and returns the message text with LF endings.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'tap';

export interface SinkMessage {
  mailArgs: string;
  rcptArgs: string[];
  body: string;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export class SmtpSink {
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(t: Test, extraArgs: string[] = []): Promise<SmtpSink> {
    const dir = await mkdtemp(join(tmpdir(), 'mailmoat-sink-'));
    const asRoot = process.getuid?.() === 0;
    if (asRoot) await chmod(dir, 0o777);
    const port = await freePort();
    const args = [...(asRoot ? ['-u', 'nobody'] : []), '-d', `${dir}/%Y%m%d%H%M%S.`, ...extraArgs, `127.0.0.1:${port}`, '100'];
    const child = spawn('smtp-sink', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`smtp-sink exited (${code}): ${stderr}`))));
    await Promise.race([waitForPort(port, 5000), exited]);
    const sink = new SmtpSink(port, dir);
    t.teardown(async () => {
      child.kill();
      await rm(dir, { recursive: true, force: true });
    });
    return sink;
  }

  /** Waits until `count` dumps exist, then parses them in name order. */
  async messages(count: number, timeoutMs = 10000): Promise<SinkMessage[]> {
    const deadline = Date.now() + timeoutMs;
    let names: string[] = [];
    while (Date.now() < deadline) {
      names = (await readdir(this.dir)).sort();
      if (names.length >= count) break;
      await sleep(50);
    }
    await sleep(100);
    names = (await readdir(this.dir)).sort();
    return Promise.all(names.map(async (name) => parseDump(await readFile(join(this.dir, name), 'latin1'))));
  }
}

export function parseDump(text: string): SinkMessage {
  const lines = text.split('\n');
  let mailArgs = '';
  const rcptArgs: string[] = [];
  let index = 0;
  for (; index < lines.length; index++) {
    const line = lines[index] ?? '';
    if (line.startsWith('X-Mail-Args: ')) mailArgs = line.slice(13);
    else if (line.startsWith('X-Rcpt-Args: ')) rcptArgs.push(line.slice(13));
    else if (!line.startsWith('X-')) break;
  }
  // smtp-sink's own Received header and its continuation lines.
  if (lines[index]?.startsWith('Received: ')) {
    index++;
    while (/^[ \t]/.test(lines[index] ?? '')) index++;
  }
  return { mailArgs, rcptArgs, body: lines.slice(index).join('\n') };
}

/** The message text as smtp-sink dumps it: every line ending (CRLF, bare CR, bare LF) as LF. */
export const asDumped = (message: Buffer | string): string => (typeof message === 'string' ? message : message.toString('latin1')).replace(/\r\n|\r|\n/g, '\n');
