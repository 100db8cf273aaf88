// The POP3 proxy in front of a real Dovecot, with a second real client: mpop, which
// logs in with USER/PASS, reads CAPA, STAT, LIST and UIDL, RETRs every message into a
// Maildir and, when not told to keep them, deletes them with DELE and QUIT.
//
// What mpop changes in a message it delivers to a Maildir (mpop 1.4.18, found by
// comparing its files with the bytes Dovecot serves): it undoes the dot-stuffing,
// prepends one Received header of three lines,
//   Received: from 127.0.0.1 (localhost [127.0.0.1])\n\tby HOST (mpop-1.4.18) with POP3\n\tfor <LOCAL-USER>; DATE\n
// and turns every CRLF line ending into LF. Nothing else: a clean message is
// therefore compared as `Received header + content with CRLF replaced by LF`.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validatePolicy } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { demoSamples } from '../../src/demo/samples.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { startTestPop3Proxy } from '../helpers/proxy.js';

const samples = demoSamples();
const inspector = await createMailInspector(validatePolicy({}, 'test'));
t.teardown(() => inspector.close());

/** The Received header mpop prepends (received_header is on by default). */
const MPOP_RECEIVED = /^Received: from 127\.0\.0\.1 \(localhost \[127\.0\.0\.1\]\)\n\tby \S+ \(mpop-[\d.]+\) with POP3\n\tfor <[^>\n]*>; [^\n]+\n/;

interface MpopRun {
  code: number | string | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs mpop once against the proxy, with no configuration file (--host disables it;
 * -C /dev/null and HOME in the temp folder make sure nothing of the machine's is read),
 * plain POP3 without TLS, USER/PASS with the password from --passwordeval, delivery to
 * the Maildir in `dir`, and the UIDLs kept in `dir` too. Its stdin is closed and its
 * output captured, never inherited.
 */
function mpop(port: number, dir: string, extra: string[]): Promise<MpopRun> {
  const args = [
    '-C',
    '/dev/null',
    '--host=127.0.0.1',
    `--port=${port}`,
    '--user=alice',
    '--auth=user',
    '--tls=off',
    '--passwordeval=echo secret',
    `--delivery=maildir,${join(dir, 'Maildir')}`,
    `--uidls-file=${join(dir, 'uidls')}`,
    '--timeout=30',
    ...extra,
  ];
  return new Promise((resolve) => {
    const child = execFile('mpop', args, { env: { ...process.env, HOME: dir }, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : ((error as NodeJS.ErrnoException & { code?: number | string }).code ?? error.message);
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end();
  });
}

/** The messages mpop delivered (Maildir new/ and cur/), keyed by their Message-ID header. */
async function delivered(dir: string): Promise<Map<string, Buffer>> {
  const byId = new Map<string, Buffer>();
  for (const sub of ['new', 'cur']) {
    for (const name of await readdir(join(dir, 'Maildir', sub))) {
      const message = await readFile(join(dir, 'Maildir', sub, name));
      const id = /^Message-ID: (\S+)$/im.exec(message.toString('latin1'))?.[1] ?? `(no Message-ID: ${name})`;
      if (byId.has(id)) throw new Error(`delivered twice: ${id}`);
      byId.set(id, message);
    }
  }
  return byId;
}

const messageId = (content: Buffer): string => /^Message-ID: (\S+)\r$/im.exec(content.toString('latin1'))?.[1] ?? '';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-mpop-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, 'Maildir', sub), { recursive: true });
  return dir;
}

t.test('mpop through the proxy: every message delivered (clean ones unchanged, executables stripped), then deleted upstream', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: samples.map((sample) => sample.content) }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const dir = await tempDir(t);
  const ids = samples.map((sample) => messageId(sample.content));
  t.equal(new Set(ids.filter(Boolean)).size, samples.length, 'every sample has its own Message-ID');

  const first = await mpop(proxy.port, dir, ['--keep=on']);
  t.equal(first.code, 0, 'mpop --keep=on exits with 0', { stdout: first.stdout, stderr: first.stderr });
  t.equal(first.stderr, '', 'nothing on stderr');

  const mail = await delivered(dir);
  t.equal(mail.size, samples.length, 'every sample arrived');
  for (const [index, sample] of samples.entries()) {
    const got = mail.get(ids[index] ?? '');
    if (got === undefined) {
      t.fail(`${sample.title}: not delivered`);
      continue;
    }
    const text = got.toString('latin1');
    const received = MPOP_RECEIVED.exec(text);
    t.ok(received, `${sample.title}: mpop's Received header first`, { found: text.slice(0, 200) });
    t.notOk(text.includes('\r'), `${sample.title}: stored with LF line endings`);
    const message = got.subarray(received?.[0].length ?? 0);
    if (Buffer.isBuffer(sample.expected)) {
      const expected = Buffer.from(sample.content.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
      t.ok(message.equals(expected), `${sample.title}: byte for byte as stored upstream (modulo Received and CRLF)`, { found: message.toString('latin1'), wanted: expected.toString('latin1') });
    } else {
      const attachment = /Content-Transfer-Encoding: base64\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n--/.exec(sample.content.toString('latin1'))?.[1]?.split('\r\n') ?? [];
      t.ok(attachment.length > 0, `${sample.title}: the original has a base64 attachment`);
      t.match(text, `mailmoat removed the attachment "${sample.expected.stripped}"`, `${sample.title}: the notice replaces the attachment`);
      t.ok(
        attachment.every((line) => !text.includes(line)),
        `${sample.title}: none of the attachment's base64 is left`,
      );
      t.notMatch(text, /^Content-Disposition: attachment/m, `${sample.title}: no attachment part left`);
      t.match(text, /^X-Mailmoat-Action: stripped 1 part$/m, `${sample.title}: marked`);
    }
  }

  t.same(
    proxy.retrievals.map((summary) => [summary.command, summary.message, summary.verdict]),
    samples.map((sample, index) => ['RETR', String(index + 1), Buffer.isBuffer(sample.expected) ? 'pass' : 'rewrite']),
    'one RETR of each message, with the expected verdict',
  );
  t.ok(proxy.retrievals.every((summary) => summary.inspected && !summary.keptAlive), 'all inspected, none needed the keepalive');
  t.equal(await dovecot.messageCount('alice'), samples.length, '--keep=on: the upstream still has every message');

  // The second run: the UIDLs file says every message was retrieved already, so mpop
  // (only_new on, its default) retrieves nothing more and, with keep off, deletes them.
  const second = await mpop(proxy.port, dir, ['--keep=off']);
  t.equal(second.code, 0, 'mpop --keep=off exits with 0', { stdout: second.stdout, stderr: second.stderr });
  t.equal(second.stderr, '', 'nothing on stderr');
  t.equal(proxy.retrievals.length, samples.length, 'nothing retrieved again');
  t.equal((await delivered(dir)).size, samples.length, 'nothing delivered again');
  t.equal(await dovecot.messageCount('alice'), 0, 'DELE and QUIT through the proxy: the upstream removed every message');
});
