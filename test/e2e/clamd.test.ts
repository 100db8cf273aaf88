// The clamd client against a real clamd started by the test: PING, VERSION, clean data, EICAR
// anywhere in a stream, clam.exe and every file of Debian's clamav-testfiles, an encrypted zip and
// a stream over StreamMaxLength (never "clean"), a clamd that stalls (timeout) or is gone (error).
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { ClamdClient, outcomeOf, parseClamdAddress } from '../../src/inspect/clamd.js';
import { storedZip } from '../../src/demo/stored-zip.js';
import { CLAMAV_TESTFILES, EICAR, startClamd } from '../helpers/clamd.js';

const once = (data: Buffer) => (async function* () { yield data; })();

t.test('a real clamd', async (t) => {
  const clamd = await startClamd(t);
  const client = new ClamdClient({ kind: 'unix', path: clamd.socket }, 10000);
  t.equal(await client.ping(), true, 'PING');
  t.match(await client.version(), /^ClamAV \d+\.\d+/, 'VERSION');
  t.same(await client.scan(once(Buffer.from('Hello, this is a clean message.\r\n'))), { kind: 'clean' });
  t.same(await client.scan(once(Buffer.from(`Subject: x\r\n\r\nsome text ${EICAR} more text\r\n`))), { kind: 'infected', signature: 'Mailmoat.Test.EICAR.UNOFFICIAL' }, 'EICAR inside text');
  const split = Buffer.from(`${'a'.repeat(70000)}${EICAR}`);
  t.match(await client.scan((async function* () { yield split.subarray(0, 65530); yield split.subarray(65530); })()), { kind: 'infected' }, 'EICAR across chunk edges');

  const files = readdirSync(CLAMAV_TESTFILES).filter((name) => !name.endsWith('.txt'));
  const missed: string[] = [];
  for (const name of files) {
    const outcome = await client.scan(once(readFileSync(join(CLAMAV_TESTFILES, name))));
    if (outcome.kind !== 'infected' && !(outcome.kind === 'unscannable' && outcome.reason === 'encrypted')) missed.push(`${name}: ${JSON.stringify(outcome)}`);
  }
  t.same(missed, [], `every one of the ${files.length} clamav-testfiles is found`);

  const encrypted = storedZip([{ name: 'secret.txt', data: Buffer.from('hidden words'), encryptedFlag: true }]);
  t.match(await client.scan(once(encrypted)), { kind: 'unscannable', reason: 'encrypted' }, 'an encrypted zip is not clean');
  const tooBig = Buffer.alloc(11 * 1024 * 1024, 0x41);
  t.match(await client.scan(once(tooBig)), { kind: 'unscannable', reason: 'limits' }, 'over StreamMaxLength is not clean');
  // The reply and our failing writes race; the outcome must not depend on which wins.
  const outcomes = new Set<string>();
  for (let trial = 0; trial < 8; trial++) {
    const chunked = (async function* () { for (let offset = 0; offset < tooBig.length; offset += 1 << (12 + trial)) yield tooBig.subarray(offset, offset + (1 << (12 + trial))); })();
    const outcome = await client.scan(chunked);
    outcomes.add(outcome.kind === 'unscannable' ? outcome.reason : outcome.kind);
  }
  t.same([...outcomes], ['limits'], 'over StreamMaxLength: limits every time, whatever the chunking');
});

t.test('a clamd that hangs up mid-stream: limits when it is alive, error when it is gone', async (t) => {
  const accepted: Socket[] = [];
  let pingsAnswered = true;
  const fake = createServer((socket) => {
    accepted.push(socket);
    socket.on('error', () => undefined);
    let seen = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      if (seen.subarray(0, 6).toString('latin1') === 'zPING\0') {
        if (pingsAnswered) socket.end('PONG\0');
        else socket.destroy();
      } else if (seen.length > 100_000) socket.destroy();
    });
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    accepted.forEach((socket) => socket.destroy());
    fake.close();
  });
  const client = new ClamdClient({ kind: 'tcp', host: '127.0.0.1', port: (fake.address() as AddressInfo).port }, 10000);
  const big = Buffer.alloc(4 * 1024 * 1024, 0x42);
  t.match(await client.scan(once(big)), { kind: 'unscannable', reason: 'limits' }, 'alive: it hung up on purpose');
  pingsAnswered = false;
  t.match(await client.scan(once(big)), { kind: 'unscannable', reason: 'error' }, 'not answering PING: a failure');
});

t.test('a clamd that stalls hits the timeout; a missing one is an error; neither is clean', async (t) => {
  const held: Socket[] = [];
  const stall = createServer((socket) => held.push(socket.on('error', () => undefined)));
  await new Promise<void>((resolve) => stall.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    held.forEach((socket) => socket.destroy());
    stall.close();
  });
  const port = (stall.address() as AddressInfo).port;
  const stalled = new ClamdClient({ kind: 'tcp', host: '127.0.0.1', port }, 300);
  t.match(await stalled.scan(once(Buffer.from('data'))), { kind: 'unscannable', reason: 'timeout' });
  const missing = new ClamdClient({ kind: 'unix', path: '/nonexistent/clamd.sock' }, 1000);
  t.match(await missing.scan(once(Buffer.from('data'))), { kind: 'unscannable', reason: 'error' });
});

t.test('replies and addresses', async (t) => {
  t.same(outcomeOf('stream: OK'), { kind: 'clean' });
  t.same(outcomeOf('stream: Win.Test.EICAR_HDB-1 FOUND'), { kind: 'infected', signature: 'Win.Test.EICAR_HDB-1' });
  t.match(outcomeOf('stream: Heuristics.Encrypted.Zip FOUND'), { kind: 'unscannable', reason: 'encrypted' });
  t.match(outcomeOf('stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND'), { kind: 'unscannable', reason: 'limits' });
  t.match(outcomeOf('INSTREAM size limit exceeded. ERROR'), { kind: 'unscannable', reason: 'limits' });
  t.match(outcomeOf('Something went wrong ERROR'), { kind: 'unscannable', reason: 'error' });
  t.same(parseClamdAddress('unix:/run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl' });
  t.same(parseClamdAddress('tcp://127.0.0.1:3310'), { kind: 'tcp', host: '127.0.0.1', port: 3310 });
  t.equal(parseClamdAddress('off'), undefined);
});

t.test('mailmoat check reports whether the scanner answers, and its signature version', async (t) => {
  const { execFile } = await import('node:child_process');
  const { mkdtemp, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const cli = join(process.cwd(), 'dist', 'src', 'cli.js');
  const run = (policy: string): Promise<{ code: number; stdout: string }> =>
    new Promise((resolve) => execFile(process.execPath, [cli, 'check', '--policy', policy], (error, stdout) => resolve({ code: error ? Number(error.code) : 0, stdout })));
  const clamd = await startClamd(t);
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-check-'));
  const up = join(dir, 'up.yaml');
  // check validates a proxy policy: it needs a listener (a policy without one is refused).
  const listener = 'listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:0\n    upstream: 127.0.0.1:25\n';
  await writeFile(up, `${listener}antivirus:\n  clamd: unix:${clamd.socket}\n`);
  const answered = await run(up);
  t.equal(answered.code, 0);
  t.match(answered.stdout, /# antivirus: clamd at unix:\S+ answers: ClamAV \d/);
  const down = join(dir, 'down.yaml');
  await writeFile(down, `${listener}antivirus:\n  clamd: unix:/nonexistent/clamd.sock\n`);
  const failed = await run(down);
  t.equal(failed.code, 1, 'a scanner that does not answer fails the health check');
  t.match(failed.stdout, /does not answer/);
});
