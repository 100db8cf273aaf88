// The spool both dialects capture a payload into is built from the policy: in memory up to
// spool.memory_threshold_bytes, on disk (in the given directory) past it.
import t from 'tap';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { payloadSpool } from '../../src/session/payload-spool.js';
import { parsePolicyText } from '../../src/config/load.js';

t.test('memory up to the threshold, then a file in the spool directory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-payload-spool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const policy = parsePolicyText('spool:\n  memory_threshold_bytes: 16\n', 'test');
  const small = payloadSpool(dir, policy);
  small.write(Buffer.alloc(16, 0x61));
  t.equal(small.onDisk, false, '16 bytes stay in memory');
  await small.dispose();
  const large = payloadSpool(dir, policy);
  large.write(Buffer.alloc(17, 0x61));
  await large.finish();
  t.equal(large.onDisk, true, '17 bytes go to a file');
  t.equal((await readdir(dir)).length, 1, 'the file is in the spool directory');
  await large.dispose();
  t.same(await readdir(dir), [], 'and is removed with the spool');
});
