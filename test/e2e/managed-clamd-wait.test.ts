// antivirus.clamd: managed on a database folder that has no signatures yet (a container whose
// freshclam has not finished its first download): the start waits, says so once, and clamd starts
// as soon as a signature file appears; freshclam's other files do not count as signatures.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedClamd, answers } from '../../src/inspect/managed-clamd.js';
import { eicarSignature } from '../../src/demo/samples.js';

t.test('an empty database folder is waited for, then clamd starts on what appears', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-signatures-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'freshclam.dat'), 'not a database');
  const events: string[] = [];
  let announceWait: () => void = () => undefined;
  const waiting = new Promise<void>((resolve) => (announceWait = resolve));
  const clamd = new ManagedClamd({
    databaseDir: dir,
    streamMaxBytes: 1_048_576,
    onEvent: (event) => {
      events.push(event);
      if (event === 'clamd waits for signatures') announceWait();
    },
  });
  t.teardown(() => clamd.stop());
  let started = false;
  const starting = clamd.start().then((address) => {
    started = true;
    return address;
  });
  await waiting;
  t.notOk(started, 'no clamd start while the folder holds no signatures');
  await writeFile(join(dir, 'test.ndb'), eicarSignature('Mailmoat.Test.EICAR'));
  const address = await starting;
  t.equal(address.kind, 'unix');
  t.ok(await answers(clamd.socket), 'clamd answers once the signatures are there');
  t.same(events, ['clamd waits for signatures', 'clamd signatures found', 'clamd answers'], 'one line says it waits, one that it found them');
});

t.test('stopping while it waits ends the wait with an error, and no clamd starts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-signatures-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let announceWait: () => void = () => undefined;
  const waiting = new Promise<void>((resolve) => (announceWait = resolve));
  const clamd = new ManagedClamd({ databaseDir: dir, streamMaxBytes: 1_048_576, onEvent: (event) => event === 'clamd waits for signatures' && announceWait() });
  const starting = clamd.start();
  await waiting;
  await clamd.stop();
  await t.rejects(starting, /stopped while waiting for signatures/);
});
