/**
 * `mailmoat demo`: the main job in seconds, with nothing to set up. A recording
 * sink stands in for the real mail server, the proxy runs in front of it with
 * policies/default.yaml plus a demo listener, the sample messages go through,
 * and a table shows what was sent, the verdict, and what the sink received.
 */
import type { Writable } from 'node:stream';
import type { Policy } from '../config/schema.js';
import type { Sample } from './samples.js';
import { validatePolicy } from '../config/load.js';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMailInspector } from '../inspect/create.js';
import { DEFAULT_CLAMD_PATH } from '../inspect/managed-clamd.js';
import type { TransactionSummary } from '../observe/log.js';
import { createLogger } from '../observe/log.js';
import { startProxy } from '../main.js';
import { RecordingSink } from './sink.js';
import { sendOnce } from './client.js';
import { demoSamples, eicarSample, eicarSignature } from './samples.js';

/**
 * With clamd installed, the demo runs a managed clamd on a signature database it
 * builds (one signature: the EICAR test string) and adds an EICAR sample.
 */
async function demoAntivirus(base: Readonly<Policy>): Promise<{ antivirus: Policy['antivirus']; cleanup: () => Promise<void> } | undefined> {
  if (!existsSync(DEFAULT_CLAMD_PATH)) return undefined;
  const databaseDir = await mkdtemp(join(tmpdir(), 'mailmoat-demo-signatures-'));
  await writeFile(join(databaseDir, 'mailmoat-demo.ndb'), eicarSignature('Mailmoat.Demo.EICAR'));
  return {
    antivirus: { ...base.antivirus, clamd: 'managed', managed: { database_dir: databaseDir } },
    cleanup: () => rm(databaseDir, { recursive: true, force: true }),
  };
}

export async function runDemo(base: Readonly<Policy>, out: Writable): Promise<boolean> {
  const sink = new RecordingSink();
  const sinkAddress = await sink.listen();
  const antivirus = await demoAntivirus(base);
  const policy = validatePolicy(
    {
      ...structuredClone(base),
      ...(antivirus === undefined ? {} : { antivirus: antivirus.antivirus }),
      listeners: [{ protocol: 'smtp', listen: '127.0.0.1:0', upstream: `127.0.0.1:${sinkAddress.port}` }],
      log: { level: 'silent' },
    },
    'demo',
  );
  const inspector = await createMailInspector(policy);
  const proxy = await startProxy(policy, inspector, createLogger('silent'));
  const summaries: TransactionSummary[] = [];
  proxy.listeners[0]?.on('transaction', (summary) => summaries.push(summary));
  const port = proxy.addresses[0]?.port ?? 0;
  out.write(`mailmoat demo: proxy on 127.0.0.1:${port} -> recording sink on 127.0.0.1:${sinkAddress.port}\n`);
  out.write(`policy: inspect.smtp=${policy.inspect.smtp}, bare line endings: ${policy.smtp.bare_line_endings}\n`);
  out.write(antivirus === undefined ? 'antivirus: clamd is not installed (apt-get install clamav-daemon), the EICAR sample is skipped\n\n' : 'antivirus: a managed clamd with a one-signature database built for the demo (EICAR)\n\n');

  const rows: string[][] = [['#', 'sample', 'sent', 'verdict', 'reply to the sender', 'what the sink received']];
  let allAsExpected = true;
  try {
    for (const [index, sample] of [...demoSamples(), ...(antivirus === undefined ? [] : [eicarSample()])].entries()) {
      const before = sink.received.length;
      const final = await sendOnce(port, { sender: 'alice@example.org', recipients: ['bob@example.net'] }, sample.wire);
      const received = sink.received.slice(before);
      const summary = summaries.at(-1);
      const delivered = received[0];
      const outcome = describe(received.length, delivered?.content, sample.expected);
      if (!outcome.endsWith('as expected')) allAsExpected = false;
      rows.push([String(index + 1), sample.title, `${sample.wire.length} B`, summary?.verdict ?? '?', `${final.code} ${final.lines.join(' ')}`, outcome]);
    }
  } finally {
    await proxy.close();
    await sink.close();
    await inspector.close();
    await antivirus?.cleanup();
  }
  out.write(formatTable(rows));
  out.write(
    '\nThe executable is replaced by a text notice and the rest of its message is delivered as it was.\n' +
      'The smuggling sample hides a second message behind a bare-LF dot (\\n.\\n); mailmoat ends data only at\n' +
      'CRLF.CRLF and sends canonical CRLF lines upstream, so the sink sees one message with the text inside.\n',
  );
  return allAsExpected;
}

function describe(count: number, content: Buffer | undefined, expected: Sample['expected']): string {
  if (count === 0 || content === undefined) return 'nothing';
  if (count > 1) return `${count} messages (smuggled!)`;
  if (Buffer.isBuffer(expected)) return content.equals(expected) ? `1 message, ${content.length} bytes, as expected` : '1 message, different from expected';
  const text = content.toString('latin1');
  const replaced = text.includes(`removed the attachment "${expected.stripped}"`) && !/^Content-Disposition: attachment/m.test(text);
  return replaced ? `1 message, attachment replaced by a notice, as expected` : '1 message, attachment not replaced';
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  const line = (row: string[]): string => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  const [head, ...body] = rows;
  return [line(head ?? []), widths.map((width) => '-'.repeat(width)).join('  '), ...body.map(line)].join('\n') + '\n';
}
