/**
 * `mailmoat demo`: the main job in seconds, with nothing to set up. The proxy
 * runs with policies/default.yaml and two demo listeners: SMTP in front of a
 * recording sink, POP3 in front of an in-memory maildrop that holds the same
 * samples. The samples are sent through the SMTP listener, then retrieved
 * through the POP3 listener, and a table for each shows the verdict and what
 * arrived on the other side.
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
import type { RetrievalSummary, TransactionSummary } from '../observe/log.js';
import { createLogger } from '../observe/log.js';
import { startProxy, type RunningProxy } from '../main.js';
import { RecordingSink } from './sink.js';
import { Maildrop } from './maildrop.js';
import { sendOnce } from './client.js';
import { Pop3Client, type Retrieval } from './pop3-client.js';
import { demoSamples, eicarSample, eicarSignature } from './samples.js';
import { QuarantineStore } from '../quarantine/store.js';

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
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const antivirus = await demoAntivirus(base);
    if (antivirus !== undefined) cleanups.push(antivirus.cleanup);
    const samples = [...demoSamples(), ...(antivirus === undefined ? [] : [eicarSample()])];
    const sink = new RecordingSink();
    const sinkAddress = await sink.listen();
    cleanups.push(() => sink.close());
    const maildrop = new Maildrop(samples.map((sample) => sample.content));
    const maildropAddress = await maildrop.listen();
    cleanups.push(() => maildrop.close());
    // The demo's quarantine lives in a temporary folder, removed at the end.
    const quarantineDir = await mkdtemp(join(tmpdir(), 'mailmoat-demo-quarantine-'));
    cleanups.push(() => rm(quarantineDir, { recursive: true, force: true }));
    const policy = validatePolicy(
      {
        ...structuredClone(base),
        quarantine: { ...base.quarantine, dir: quarantineDir },
        ...(antivirus === undefined ? {} : { antivirus: antivirus.antivirus }),
        listeners: [
          { protocol: 'smtp', listen: '127.0.0.1:0', upstream: `127.0.0.1:${sinkAddress.port}` },
          { protocol: 'pop3', listen: '127.0.0.1:0', upstream: `127.0.0.1:${maildropAddress.port}` },
        ],
        log: { level: 'silent' },
      },
      'demo',
    );
    const inspector = await createMailInspector(policy);
    cleanups.push(() => inspector.close());
    const proxy = await startProxy(policy, inspector, createLogger('silent'));
    cleanups.push(() => proxy.close());
    const [smtpPort, pop3Port] = proxy.addresses.map((address) => address.port);
    out.write(`mailmoat demo: SMTP proxy on 127.0.0.1:${smtpPort ?? 0} -> recording sink on 127.0.0.1:${sinkAddress.port}\n`);
    out.write(`               POP3 proxy on 127.0.0.1:${pop3Port ?? 0} -> demo maildrop on 127.0.0.1:${maildropAddress.port}\n`);
    out.write(`policy: inspect.smtp=${policy.inspect.smtp}, inspect.pop3=${policy.inspect.pop3}, bare line endings: ${policy.smtp.bare_line_endings}\n`);
    out.write(antivirus === undefined ? 'antivirus: clamd is not installed (apt-get install clamav-daemon), the EICAR sample is skipped\n' : 'antivirus: a managed clamd with a one-signature database built for the demo (EICAR)\n');

    const sent = await smtpPart(proxy, samples, sink, out);
    const retrieved = await pop3Part(proxy, samples, out);
    const kept = await new QuarantineStore(quarantineDir).list();
    out.write(
      `\nQuarantine: ${kept.length} originals of rewritten messages were kept (one per rewrite above, SMTP and POP3);\n` +
        'with the default policy they stay 30 days in /var/lib/mailmoat/quarantine: mailmoat quarantine list | show | release.\n',
    );
    return sent && retrieved;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

/** Each sample is sent through the SMTP listener; the sink shows what the real server would have received. */
async function smtpPart(proxy: RunningProxy, samples: readonly Sample[], sink: RecordingSink, out: Writable): Promise<boolean> {
  const summaries: TransactionSummary[] = [];
  proxy.listeners[0]?.on('transaction', (summary) => summaries.push(summary));
  const port = proxy.addresses[0]?.port ?? 0;
  const rows: string[][] = [['#', 'sample', 'sent', 'verdict', 'reply to the sender', 'what the sink received']];
  let allAsExpected = true;
  for (const [index, sample] of samples.entries()) {
    const before = sink.received.length;
    const final = await sendOnce(port, { sender: 'alice@example.org', recipients: ['bob@example.net'] }, sample.wire);
    const received = sink.received.slice(before);
    const summary = summaries.at(-1);
    const delivered = received[0];
    const outcome = describe(received.length, delivered?.content, sample.expected);
    if (!outcome.endsWith('as expected')) allAsExpected = false;
    rows.push([String(index + 1), sample.title, `${sample.wire.length} B`, summary?.verdict ?? '?', `${final.code} ${final.lines.join(' ')}`, outcome]);
  }
  out.write('\nSMTP: each sample is sent through the proxy to the recording sink\n\n');
  out.write(formatTable(rows));
  out.write(
    '\nThe executable is replaced by a text notice and the rest of its message is delivered as it was.\n' +
      'The smuggling sample hides a second message behind a bare-LF dot (\\n.\\n); mailmoat ends data only at\n' +
      'CRLF.CRLF and sends canonical CRLF lines upstream, so the sink sees one message with the text inside.\n',
  );
  return allAsExpected;
}

/** The maildrop holds the samples as a mailbox stores them; a client logs in through the POP3 listener and RETRs each. */
async function pop3Part(proxy: RunningProxy, samples: readonly Sample[], out: Writable): Promise<boolean> {
  const summaries = new Map<string, RetrievalSummary>();
  proxy.listeners[1]?.on('retrieval', (summary) => summaries.set(summary.message, summary));
  const client = await Pop3Client.connect(proxy.addresses[1]?.port ?? 0);
  const retrievals: Retrieval[] = [];
  try {
    await client.login('demo', 'demo');
    const count = await client.count();
    if (count !== samples.length) throw new Error(`the demo maildrop holds ${count} messages, expected ${samples.length}`);
    for (let number = 1; number <= count; number++) retrievals.push(await client.retrieve(number));
    // QUIT is answered after the last retrieval was reported, so every summary is in.
    await client.quit();
  } finally {
    client.close();
  }
  const rows: string[][] = [['#', 'sample', 'in the mailbox', 'verdict', 'what the client received']];
  let allAsExpected = true;
  for (const [index, sample] of samples.entries()) {
    const outcome = describeRetrieval(retrievals[index], sample);
    if (!outcome.endsWith('as expected')) allAsExpected = false;
    rows.push([String(index + 1), sample.title, `${sample.content.length} B`, summaries.get(String(index + 1))?.verdict ?? '?', outcome]);
  }
  out.write('\nPOP3: the maildrop holds the same samples; a client logs in as demo/demo through the proxy and RETRs each\n\n');
  out.write(formatTable(rows));
  out.write(
    '\nRetrieved mail is inspected like mail that arrives by SMTP: a clean message reaches the client byte for\n' +
      'byte, and an executable or infected attachment is replaced by the notice before the client sees it.\n' +
      'The message on the server is left as it is.\n',
  );
  return allAsExpected;
}

function describe(count: number, content: Buffer | undefined, expected: Sample['expected']): string {
  if (count === 0 || content === undefined) return 'nothing';
  if (count > 1) return `${count} messages (smuggled!)`;
  if (Buffer.isBuffer(expected)) return content.equals(expected) ? `1 message, ${content.length} bytes, as expected` : '1 message, different from expected';
  return replacedByNotice(content, expected.stripped) ? `1 message, attachment replaced by a notice, as expected` : '1 message, attachment not replaced';
}

/** For POP3 a clean sample must come back as the mailbox stores it (`content`), byte for byte. */
function describeRetrieval(retrieval: Retrieval | undefined, sample: Sample): string {
  if (retrieval === undefined) return 'nothing';
  if (!retrieval.ok) return `refused: ${retrieval.response}`;
  const content = retrieval.content;
  if (Buffer.isBuffer(sample.expected)) return content.equals(sample.content) ? `${content.length} bytes, identical, as expected` : `${content.length} bytes, different from the mailbox`;
  return replacedByNotice(content, sample.expected.stripped) ? 'attachment replaced by a notice, as expected' : 'attachment not replaced';
}

/** The notice names the attachment, and no part is left as an attachment. */
function replacedByNotice(content: Buffer, name: string): boolean {
  const text = content.toString('latin1');
  return text.includes(`removed the attachment "${name}"`) && !/^Content-Disposition: attachment/m.test(text);
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  const line = (row: string[]): string => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  const [head, ...body] = rows;
  return [line(head ?? []), widths.map((width) => '-'.repeat(width)).join('  '), ...body.map(line)].join('\n') + '\n';
}
