// antivirus.clamd: managed — mailmoat starts clamd on a database folder, scans with it, restarts
// it when it dies (scans tempfail meanwhile, never pass), and says clearly when clamd is missing.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { EICAR } from '../helpers/clamd.js';
import { eicarSignature } from '../../src/demo/samples.js';

const message = Buffer.from(
  ['From: a@example.org', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'hi', '--b', 'Content-Type: application/octet-stream; name="t.bin"', 'Content-Transfer-Encoding: base64', '', Buffer.from(EICAR).toString('base64'), '--b--', ''].join('\r\n'),
);
const source = { size: message.length, open: async function* () { yield message; } };

async function database(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-signatures-'));
  await writeFile(join(dir, 'test.ndb'), eicarSignature('Mailmoat.Test.EICAR'));
  return dir;
}

t.test('managed clamd scans, is restarted when it dies, and stops with the inspector', async (t) => {
  const policy = parsePolicyText(`antivirus:\n  clamd: managed\n  managed:\n    database_dir: ${await database()}\n`, 'test');
  const inspector = await createMailInspector(policy);
  t.teardown(() => inspector.close());
  const first = await inspector.examine(source);
  t.equal(first.verdict.action, 'rewrite', 'EICAR found by the managed clamd');
  if (first.verdict.action === 'rewrite') await first.verdict.message.dispose();

  const address = inspector.scanners[0]?.address;
  const config = address?.kind === 'unix' ? join(dirname(address.path), 'clamd.conf') : '';
  execFileSync('pkill', ['-KILL', '-f', config]);
  await sleep(100);
  const down = await inspector.examine(source);
  t.equal(down.verdict.action, 'tempfail', 'while clamd is down: tempfail');
  let recovered = false;
  for (let attempt = 0; attempt < 60 && !recovered; attempt++) {
    await sleep(250);
    const again = await inspector.examine(source);
    if (again.verdict.action === 'rewrite') {
      recovered = true;
      await again.verdict.message.dispose();
    }
  }
  t.ok(recovered, 'clamd was restarted and scanning recovered by itself');
  await inspector.close();
  t.throws(() => execFileSync('pgrep', ['-f', config]), 'no clamd left running after close');
});

t.test('clamd not installed: a clear error naming the package', async (t) => {
  const policy = parsePolicyText(`antivirus:\n  clamd: managed\n  managed:\n    database_dir: ${await database()}\n`, 'test');
  await t.rejects(createMailInspector(policy, { clamdPath: '/nonexistent/clamd' }), /clamd is not installed .*apt-get install clamav-daemon, or set antivirus\.clamd: off/);
});
