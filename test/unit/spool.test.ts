// The payload spool: memory up to the threshold, then a 0600 temp file that dispose() removes;
// reads back exactly what was written; reports backpressure.
import t from 'tap';
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Spool } from '../../src/capture/spool.js';

async function readAll(spool: Spool): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of spool.open()) chunks.push(chunk);
  return Buffer.concat(chunks);
}

t.test('small messages stay in memory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-spool-'));
  const spool = new Spool({ dir, memoryThresholdBytes: 1024 });
  t.ok(spool.write(Buffer.from('hello ')));
  t.ok(spool.write(Buffer.from('world')));
  await spool.finish();
  t.equal(spool.onDisk, false);
  t.same(await readdir(dir), []);
  t.equal((await readAll(spool)).toString(), 'hello world');
  t.equal((await readAll(spool)).toString(), 'hello world', 'open() reads anew each time');
  await spool.dispose();
});

t.test('large messages go to a 0600 file that dispose() removes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-spool-'));
  const spool = new Spool({ dir, memoryThresholdBytes: 1000 });
  const parts = Array.from({ length: 200 }, () => randomBytes(5000));
  let sawBackpressure = false;
  for (const part of parts) {
    if (!spool.write(part)) {
      sawBackpressure = true;
      await spool.drained();
    }
  }
  await spool.finish();
  t.ok(sawBackpressure, 'a 1 MB burst reported backpressure');
  t.equal(spool.onDisk, true);
  const [file] = await readdir(dir);
  t.ok(file, 'one temp file');
  t.equal((await stat(join(dir, file ?? ''))).mode & 0o777, 0o600, 'mode 0600');
  t.ok((await readAll(spool)).equals(Buffer.concat(parts)), 'reads back the same bytes');
  t.equal(spool.size, 1_000_000);
  await spool.dispose();
  t.same(await readdir(dir), [], 'removed');
});

t.test('a spool directory that cannot be written fails finish(), not the process', async (t) => {
  const spool = new Spool({ dir: '/nonexistent/mailmoat', memoryThresholdBytes: 1 });
  spool.write(Buffer.from('more than one byte'));
  await t.rejects(spool.finish(), /ENOENT/);
  await spool.dispose();
});
