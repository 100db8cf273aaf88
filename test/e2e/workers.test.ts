// Workers (node:cluster): a worker that dies is replaced and mail keeps flowing; a worker
// is recycled after recycle_after.sessions sessions with no session dropped (its
// replacement listens before it is told to drain).
import t from 'tap';
import { RawClient } from '../helpers/client.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { SmtpSink } from '../helpers/smtp-sink.js';

async function sendOne(port: number, subject: string): Promise<number[]> {
  const client = await RawClient.greeted(port);
  client.send(`EHLO workers.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n`);
  await client.waitForReplies(5);
  client.send(`Subject: ${subject}\r\n\r\nhello\r\n.\r\nQUIT\r\n`);
  await client.waitForClose();
  return client.codes();
}

t.test('a killed worker is replaced', async (t) => {
  const sink = await SmtpSink.start(t);
  const mailmoat = await startMailmoat(t, sink.port, 'workers: 2\n');
  const workers = mailmoat.log().filter((line) => line.msg === 'worker listening');
  t.equal(workers.length, 2, 'two workers listen');
  const victim = Number(workers[0]?.workerPid);
  const mark = mailmoat.lines();
  process.kill(victim, 'SIGKILL');
  const died = await mailmoat.logged('worker exited unexpectedly: a replacement is started', mark);
  t.match(died, { signal: 'SIGKILL' });
  const replaced = await mailmoat.logged('worker listening', mark);
  t.not(Number(replaced.workerPid), victim, 'a new worker listens');
  const codes = await Promise.all([1, 2, 3, 4].map((n) => sendOne(mailmoat.port, `after ${n}`)));
  t.same(codes, Array(4).fill([220, 250, 250, 250, 354, 250, 221]), 'mail flows');
  t.equal((await sink.messages(4)).length, 4);
  mailmoat.child.kill('SIGTERM');
  t.equal(await mailmoat.exited, 0);
});

t.test('recycle_after.sessions: the worker is replaced after its sessions, none is dropped', async (t) => {
  const sink = await SmtpSink.start(t);
  const mailmoat = await startMailmoat(t, sink.port, 'workers: 1\nrecycle_after:\n  sessions: 2\n');
  const codes: number[][] = [];
  for (let n = 1; n <= 5; n++) codes.push(await sendOne(mailmoat.port, `message ${n}`));
  t.same(codes, Array(5).fill([220, 250, 250, 250, 354, 250, 221]), 'every session completed');
  t.equal((await sink.messages(5)).length, 5, 'every message delivered');
  t.match(await mailmoat.logged('recycling a worker: its replacement starts first'), { reason: '2 sessions' }, 'recycled');
  t.match(await mailmoat.logged('worker stopped'), { code: 0 }, 'the old worker drained and stopped');
  mailmoat.child.kill('SIGTERM');
  t.equal(await mailmoat.exited, 0);
});
