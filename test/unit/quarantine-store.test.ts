// The quarantine store: atomic entries (the record is written last), listing,
// retention by age, leftovers of interrupted writes, and clear errors.
import t from 'tap';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { QuarantineStore, type NewRecord } from '../../src/quarantine/store.js';
import { bytesSource } from '../helpers/inspect.js';

const fields: NewRecord = {
  session: 's-1',
  protocol: 'smtp',
  direction: 'inbound',
  sender: '<a@example.org>',
  recipients: ['<b@example.net>'],
  action: 'rewrite',
  reason: 'stripped 1 part',
  findings: [{ part: '2', filename: 'x.exe', kind: 'executable', reason: 'the name matches *.exe' }],
};

t.test('store, list, show, original, delete', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new QuarantineStore(join(dir, 'q'), () => new Date('2026-11-22T09:00:00.123Z'));
  const message = Buffer.from('Subject: x\r\n\r\n.dot line\r\n');
  const record = await store.store(bytesSource(message), fields);
  t.match(record.id, /^20261122T090000Z-[0-9a-f]{8}$/);
  t.equal(record.size, message.length);
  t.same(await store.original(record.id), message, 'the original bytes');
  t.same(await store.show(record.id), record);
  t.same((await store.list()).map((entry) => entry.id), [record.id]);
  t.same((await readdir(join(dir, 'q'))).sort(), [`${record.id}.eml`, `${record.id}.json`], 'no temporary files left');
  await store.delete(record.id);
  t.same(await store.list(), []);
  await t.rejects(store.show(record.id), /no quarantine entry/);
  await t.rejects(store.show('../../etc/passwd'), /not a quarantine id/, 'ids are checked, never used as paths');
});

t.test('purge: entries past their age go, and so do leftovers of an interrupted write', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let now = new Date('2026-11-22T09:00:00Z');
  const store = new QuarantineStore(dir, () => now);
  const old = await store.store(bytesSource(Buffer.from('old\r\n')), fields);
  const oldTime = new Date('2026-10-01T00:00:00Z');
  for (const extension of ['eml', 'json']) await utimes(join(dir, `${old.id}.${extension}`), oldTime, oldTime);
  const fresh = await store.store(bytesSource(Buffer.from('fresh\r\n')), fields);
  await writeFile(join(dir, '20261122T090000Z-deadbeef.eml'), 'a message whose record was never written');
  await utimes(join(dir, '20261122T090000Z-deadbeef.eml'), new Date('2026-11-22T09:00:00Z'), new Date('2026-11-22T09:00:00Z'));
  const beingWritten = '20261122T095959Z-0badf00d.eml';
  await writeFile(join(dir, beingWritten), 'its record comes next');
  await utimes(join(dir, beingWritten), new Date('2026-11-22T09:59:59Z'), new Date('2026-11-22T09:59:59Z'));
  await writeFile(join(dir, '.tmp-20261001T000000Z-cafecafe.eml'), 'an interrupted write');
  await utimes(join(dir, '.tmp-20261001T000000Z-cafecafe.eml'), oldTime, oldTime);
  const deadWriter = spawnSync('true').pid;
  await writeFile(join(dir, `.tmp-${deadWriter}-20261122T095000Z-feedface.eml`), 'a write its killed writer never finished');
  const liveWriting = `.tmp-${process.pid}-20261122T095000Z-abcdabcd.eml`;
  await writeFile(join(dir, liveWriting), 'a write in progress');
  now = new Date('2026-11-22T10:00:00Z');
  t.equal(await store.purge(30 * 86_400_000), 1, 'one entry older than 30 days');
  t.same((await store.list()).map((entry) => entry.id), [fresh.id]);
  t.same((await readdir(dir)).sort(), [liveWriting, beingWritten, `${fresh.id}.eml`, `${fresh.id}.json`].sort(), 'the orphan, the old temporary file and the dead writer\'s are gone; writes in progress stay');
});

t.test('a store that cannot be written rejects (the session then tempfails)', async (t) => {
  const store = new QuarantineStore('/dev/null/quarantine');
  await t.rejects(store.store(bytesSource(Buffer.from('x\r\n')), fields));
});
