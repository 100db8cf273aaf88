// Issue 16.2: the spool on a full filesystem. The sender gets 451 4.3.0 at its final dot (no
// hang), nothing reaches the upstream, and the partial spool file is removed, so the next
// message finds the space again. The filesystem is a tiny tmpfs mounted here (needs root).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

/** The tmpfs holds this much; the message below is several times larger. */
const TMPFS_BYTES = 256 * 1024;

const isRoot = process.getuid?.() === 0;

t.test('spool on a full filesystem: 451 4.3.0, nothing upstream, the partial file removed', { skip: isRoot ? false : 'needs root to mount a tmpfs' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-full-spool-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES},mode=0700`, 'tmpfs', dir]);
  t.teardown(async () => {
    execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  });
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { spool: { dir, memory_threshold_bytes: 4096 } });
  const client = await RawClient.openTransaction(proxy.port);
  t.equal(client.replies[4]?.code, 354);
  const line = `${'y'.repeat(998)}\r\n`;
  client.send(`Subject: too big for the disk\r\n\r\n${line.repeat(1024)}.\r\n`);
  await client.waitForReplies(6, 30000);
  t.equal(client.replies[5]?.code, 451, 'the final dot is answered');
  t.match(client.replies[5]?.lines[0], /^4\.3\.0/);
  t.same(upstream.payloads, [], 'nothing reached the upstream');
  t.same(await readdir(dir), [], 'the partial spool file is gone');
  t.equal((await client.command('NOOP')).code, 250, 'the session goes on');
  // The space is free again: a message that fits goes through.
  client.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(10);
  t.equal(client.replies[9]?.code, 354);
  client.send(`Subject: fits\r\n\r\n${line.repeat(20)}.\r\n`);
  await client.waitForReplies(11);
  t.equal(client.replies[10]?.code, 250);
  t.equal(upstream.payloads.length, 1);
  client.close();
});
