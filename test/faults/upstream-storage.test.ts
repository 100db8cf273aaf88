// Fault suite, the other faults, each answered with its documented 4xx and nothing half-delivered:
// an upstream that dies mid-DATA and one that dies after the dot (451 4.4.2); clamd gone, hanging
// up mid-stream and stalled (451 4.3.0, the antivirus failure policy's tempfail); the quarantine
// on a tiny tmpfs that fills up (451 4.3.0 once full, no temporary file left behind). Real
// `mailmoat start` processes; a recording upstream; a fake clamd where clamd must misbehave.
import t from 'tap';
import { mkdtemp, readdir, rm, mkdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { RecordingSink } from '../../bench/recording-sink.js';
import { sendTrial, tally, trialMessage } from '../../bench/fault-trials.js';

/** A message with an executable attachment (flagged, so its original goes to the quarantine), about `bytes` long. */
function flaggedMessage(id: string, bytes: number): Buffer {
  const text = trialMessage(id, bytes).toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n').replace(/^\./gm, '');
  return Buffer.from(
    [`From: <sender@example.org>`, `Subject: flagged ${id}`, `X-Trial: ${id}`, 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', text, '--b', 'Content-Type: application/octet-stream; name="tool.exe"', 'Content-Disposition: attachment; filename="tool.exe"', 'Content-Transfer-Encoding: base64', '', Buffer.from('MZ\x90\x00tool').toString('base64'), '--b--', ''].join('\r\n'),
    'latin1',
  );
}

t.test('upstream faults, and the quarantine on a full disk', async (t) => {
  const sink = await RecordingSink.start();
  t.teardown(() => sink.close());
  const running = await startMailmoat(t, sink.port, 'workers: 1\n');
  // The policy's quarantine folder (./quarantine beside it), on a 256 KiB tmpfs.
  const quarantine = join(dirname(running.policy), 'quarantine');
  await mkdir(quarantine, { recursive: true });
  const tinyDisk = process.getuid?.() === 0;
  if (tinyDisk) {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', quarantine]);
    t.teardown(() => execFileSync('umount', ['-l', quarantine]));
  }

  const tallies: Record<string, unknown> = {};
  sink.behaviour = { dieAfterDataBytes: 50_000 };
  const midData = await sendTrial(running.port, 'mid-data', trialMessage('mid-data', 200_000));
  sink.behaviour = { dieAfterDot: true };
  const afterDot = await sendTrial(running.port, 'after-dot', trialMessage('after-dot', 20_000));
  sink.behaviour = {};
  const fine = await sendTrial(running.port, 'after-faults', trialMessage('after-faults', 20_000));
  t.equal(midData.reply, 451, 'upstream dies mid-DATA: 451 4.4.2');
  t.equal(afterDot.reply, 451, 'upstream dies after the dot: 451 4.4.2');
  t.equal(fine.reply, 250, 'the next message goes through');
  tallies.upstream = tally([midData, afterDot, fine], sink.delivered);
  t.match(tallies.upstream, { lost: 0, corrupted: 0, duplicateAfter250: 0, unacknowledgedDelivered: 0 });

  if (!tinyDisk) {
    t.comment(`tally ${JSON.stringify(tallies)}`);
    t.comment('skipped: the quarantine on a tiny tmpfs needs root (mount)');
    return;
  }
  const replies: number[] = [];
  const before = sink.delivered.length;
  for (let index = 0; index < 14; index++) replies.push((await sendTrial(running.port, `q${index}`, flaggedMessage(`q${index}`, 40_000))).reply);
  const accepted = replies.filter((code) => code === 250).length;
  tallies.quarantine = { sent: replies.length, accepted, tempfailed: replies.filter((code) => code === 451).length };
  t.comment(`tally ${JSON.stringify(tallies)}`);
  t.ok(accepted > 0, 'accepted while the quarantine has room');
  t.ok(replies.every((code) => code === 250 || code === 451), `every reply is 250 or 451 4.3.0: ${replies.join(' ')}`);
  t.ok(replies.indexOf(451) > 0 && replies.slice(replies.indexOf(451)).every((code) => code === 451), 'once full: 451, never a 250 without the original kept');
  t.equal(sink.delivered.length - before, accepted, 'delivered exactly the accepted ones');
  t.same((await readdir(quarantine)).filter((name) => name.startsWith('.tmp-')), [], 'no temporary file left on the full disk');
});

t.test('clamd gone, hanging up mid-stream, stalled: 451 4.3.0 each time, nothing delivered', async (t) => {
  const sink = await RecordingSink.start();
  t.teardown(() => sink.close());
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-fault-clamd-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'clamd.sock');
  let mode: 'hangup' | 'stall' = 'hangup';
  const held: Socket[] = [];
  const fake = createServer((socket) => {
    held.push(socket);
    socket.on('error', () => undefined);
    let seen = 0;
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      // Hang up mid-stream, and answer no PING either: a clamd that crashed on this stream.
      if (mode === 'hangup' && seen > 20_000) socket.destroy();
      if (mode === 'hangup' && chunk.subarray(0, 6).toString('latin1') === 'zPING\0') socket.destroy();
    });
  });
  await mkdir(dir, { recursive: true });
  await new Promise<void>((resolve) => fake.listen(socketPath, resolve));
  t.teardown(() => {
    held.forEach((socket) => socket.destroy());
    fake.close();
  });
  const running = await startMailmoat(t, sink.port, `workers: 1\nantivirus:\n  clamd: unix:${socketPath}\n  scan_timeout_seconds: 1\n`);
  const hangup = await sendTrial(running.port, 'clamd-hangup', trialMessage('clamd-hangup', 100_000));
  mode = 'stall';
  const stall = await sendTrial(running.port, 'clamd-stall', trialMessage('clamd-stall', 20_000));
  held.forEach((socket) => socket.destroy());
  await new Promise<void>((resolve) => fake.close(() => resolve()));
  const gone = await sendTrial(running.port, 'clamd-gone', trialMessage('clamd-gone', 20_000));
  const result = tally([hangup, stall, gone], sink.delivered);
  t.comment(`tally ${JSON.stringify(result)}`);
  t.same([hangup.reply, stall.reply, gone.reply], [451, 451, 451], 'hang-up, stall, gone: 451 4.3.0');
  t.equal(sink.delivered.length, 0, 'nothing delivered unscanned');
  t.match(result, { lost: 0, corrupted: 0 });
});
