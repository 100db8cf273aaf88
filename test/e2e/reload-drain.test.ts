// `mailmoat start` as a service manager drives it: SIGHUP reloads the policy (a broken
// policy is refused and the running one kept), SIGTERM drains (no new sessions, a
// transfer in progress completes, or gets 421 at the deadline: never a lost message).
import t from 'tap';
import { connect } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { demoSamples } from '../../src/demo/samples.js';
import { RawClient } from '../helpers/client.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { SmtpSink } from '../helpers/smtp-sink.js';

const executable = demoSamples().find((sample) => sample.title.startsWith('invoice.pdf.exe'));
if (executable === undefined) throw new Error('no executable sample');

async function sendExecutable(port: number): Promise<number[]> {
  const client = await RawClient.greeted(port);
  client.send('EHLO ops.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  client.send(Buffer.concat([executable?.wire ?? Buffer.alloc(0), Buffer.from('QUIT\r\n')]));
  await client.waitForClose();
  return client.codes();
}

t.test('SIGHUP: a good policy applies to new sessions, a broken one is refused and the running one kept', async (t) => {
  const sink = await SmtpSink.start(t);
  const mailmoat = await startMailmoat(t, sink.port, 'inspect:\n  smtp: none\n');
  t.same(await sendExecutable(mailmoat.port), [220, 250, 250, 250, 354, 250, 221]);
  t.notMatch((await sink.messages(1))[0]?.body, /mailmoat removed/, 'inspect.smtp: none: delivered as it was');

  const mark = mailmoat.lines();
  await writeFile(mailmoat.policy, (await readFile(mailmoat.policy, 'utf8')).replace('smtp: none', 'smtp: all'));
  mailmoat.child.kill('SIGHUP');
  // Every worker reloads (one line each); wait for all of them.
  const workers = mailmoat.log().filter((line) => line.msg === 'worker listening').length || 1;
  await mailmoat.loggedTimes('policy reloaded: new sessions use it', workers, mark);
  await sendExecutable(mailmoat.port);
  t.equal((await sink.messages(2)).filter((message) => message.body.includes('mailmoat removed')).length, 1, 'after the reload it is stripped');

  const broken = mailmoat.lines();
  await writeFile(mailmoat.policy, (await readFile(mailmoat.policy, 'utf8')).replace('smtp: all', 'smpt: all'));
  mailmoat.child.kill('SIGHUP');
  const failure = await mailmoat.logged('policy reload failed: the running policy is kept', broken);
  t.match(failure.reason, /unknown key "inspect\.smpt" \(did you mean "smtp"\?\)/, 'the log says why');
  await sendExecutable(mailmoat.port);
  t.equal((await sink.messages(3)).filter((message) => message.body.includes('mailmoat removed')).length, 2, 'the running policy still applies');
  mailmoat.child.kill('SIGTERM');
  t.equal(await mailmoat.exited, 0, 'a clean exit');
});

t.test('SIGTERM during DATA: no new sessions; the transfer completes, then 421; exit 0', async (t) => {
  const sink = await SmtpSink.start(t);
  const mailmoat = await startMailmoat(t, sink.port, 'timeouts:\n  drain_seconds: 20\n');
  const client = await RawClient.greeted(mailmoat.port);
  client.send('EHLO ops.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  const wire = executable?.wire ?? Buffer.alloc(0);
  client.send(wire.subarray(0, 300));
  const workers = mailmoat.log().filter((line) => line.msg === 'worker listening').length || 1;
  mailmoat.child.kill('SIGTERM');
  await mailmoat.loggedTimes('draining: no new sessions, running ones may finish', workers);
  // With workers, the shared socket closes once every worker has stopped accepting: poll briefly.
  let refused = '';
  for (const deadline = Date.now() + 3000; refused !== 'ECONNREFUSED' && Date.now() < deadline; await sleep(100)) {
    refused = await new Promise<string>((resolve) => {
      const probe = connect({ host: '127.0.0.1', port: mailmoat.port });
      probe.once('connect', () => (probe.destroy(), resolve('connected')));
      probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
  }
  t.equal(refused, 'ECONNREFUSED', 'no new sessions while draining');
  if (refused !== 'ECONNREFUSED') t.comment(JSON.stringify(mailmoat.log()));
  await sleep(300);
  client.send(wire.subarray(300));
  await client.waitForClose();
  t.same(client.codes(), [220, 250, 250, 250, 354, 250, 421], 'the message is accepted, then the session is closed with 421');
  t.match(client.replies.at(-1)?.lines[0], /^4\.3\.2 Service shutting down/);
  t.equal((await sink.messages(1)).length, 1, 'and delivered');
  t.equal(await mailmoat.exited, 0, 'a clean exit');
});

t.test('SIGTERM with a sender that never finishes: 421 at timeouts.drain_seconds, nothing delivered', async (t) => {
  const sink = await SmtpSink.start(t);
  const mailmoat = await startMailmoat(t, sink.port, 'timeouts:\n  drain_seconds: 1\n');
  const client = await RawClient.greeted(mailmoat.port);
  client.send('EHLO ops.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: never ends\r\n\r\nhalf');
  await client.waitForReplies(5);
  const idle = await RawClient.greeted(mailmoat.port);
  mailmoat.child.kill('SIGTERM');
  t.ok(await idle.waitForClose(5000), 'an idle session is closed at once');
  t.match(idle.replies.at(-1), { code: 421 });
  t.ok(await client.waitForClose(5000), 'the unfinished one at the deadline');
  t.same(client.codes(), [220, 250, 250, 250, 354, 421], 'the sender gets 421 and will retry');
  t.equal((await sink.messages(0, 500)).length, 0, 'nothing half-delivered');
  const code = await Promise.race([mailmoat.exited, sleep(8000).then(() => 'still running')]);
  t.equal(code, 0, 'a clean exit');
  if (code !== 0) t.comment(JSON.stringify(mailmoat.log()));
});
