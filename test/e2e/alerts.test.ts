// Administrator alerts received by a real smtp-sink: batched (one notice for a burst),
// rate-limited (alerts.max_per_hour, the rest held back and counted in the next notice),
// and the optional notices to recipients and senders (never to the sender of a virus).
// The batch window is driven by a clock the test owns: no wait depends on time.
import t from 'tap';
import libqp from 'libqp';
import { validatePolicy } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { demoSamples } from '../../src/demo/samples.js';
import { AlertNotifier, type AlertClock } from '../../src/alerts/notify.js';
import { createLogger } from '../../src/observe/log.js';
import type { FlaggedMessage } from '../../src/quarantine/store.js';
import { SmtpSink, type SinkMessage } from '../helpers/smtp-sink.js';
import { startTestProxy } from '../helpers/proxy.js';
import { RawClient } from '../helpers/client.js';

const executable = demoSamples().find((sample) => sample.title.startsWith('invoice.pdf.exe'));
if (executable === undefined) throw new Error('no executable sample');
const inspector = await createMailInspector(validatePolicy({}, 'test'));
t.teardown(() => inspector.close());

/** A clock the test moves: advance() runs the timers that fall due and waits for them (the notices are sent). */
class ManualClock implements AlertClock {
  private current = Date.now();
  private timers: { at: number; run: () => Promise<void> }[] = [];

  now(): number {
    return this.current;
  }

  schedule(run: () => Promise<void>, ms: number): () => void {
    const timer = { at: this.current + ms, run };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((other) => other !== timer);
    };
  }

  async advance(ms: number): Promise<void> {
    this.current += ms;
    const due = this.timers.filter((timer) => timer.at <= this.current);
    this.timers = this.timers.filter((timer) => timer.at > this.current);
    for (const timer of due) await timer.run();
  }
}

const alertsIn = (messages: SinkMessage[]): SinkMessage[] => messages.filter((message) => /^Subject: mailmoat: /m.test(message.body));

/** The text of a notice: its body decoded from quoted-printable (long lines are wrapped with soft breaks). */
const noticeText = (message: SinkMessage | undefined): string => {
  const body = message?.body ?? '';
  const split = body.indexOf('\n\n');
  return `${body.slice(0, split)}\n\n${libqp.decode(body.slice(split + 2).replace(/\n/g, '\r\n')).toString('utf8')}`;
};

async function sendExecutables(port: number, count: number): Promise<void> {
  const client = await RawClient.greeted(port);
  await client.command('EHLO alerts.test');
  for (let index = 0; index < count; index++) {
    const before = client.replies.length;
    client.send('MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n');
    await client.waitForReplies(before + 3);
    client.send(executable?.wire ?? '');
    await client.waitForReplies(before + 4);
  }
  client.send('QUIT\r\n');
  await client.waitForClose();
}

t.test('a burst is one notice; past alerts.max_per_hour events are held back and counted in the next one', async (t) => {
  const sink = await SmtpSink.start(t);
  const clock = new ManualClock();
  const proxy = await startTestProxy(t, sink.port, { alerts: { to: ['admin@example.net'], from: 'mailmoat@example.net', batch_seconds: 0.5, max_per_hour: 2 } }, inspector, { alertClock: clock });
  await sendExecutables(proxy.port, 3);
  t.equal((await sink.messages(0, 0)).length, 3, 'no notice before the batch window ends');
  await clock.advance(500);
  let messages = await sink.messages(4);
  const first = noticeText(alertsIn(messages)[0]);
  t.equal(alertsIn(messages).length, 1, 'three messages, one notice');
  t.match(first, /^Subject: mailmoat: 3 messages with executables$/m);
  t.match(first, /^To: admin@example\.net$/m);
  t.equal((first.match(/^\* .* SMTP inbound, action: rewrite$/gm) ?? []).length, 3, 'each message listed');
  t.match(first, /quarantine: \d{8}T\d{6}Z-[0-9a-f]{8}/, 'with its quarantine id');
  t.match(first, /- executable: invoice\.pdf\.exe: the name matches \*\.exe/);
  await sendExecutables(proxy.port, 1);
  await clock.advance(500);
  messages = await sink.messages(6);
  t.equal(alertsIn(messages).length, 2, 'the second notice');
  await sendExecutables(proxy.port, 2);
  await clock.advance(500);
  t.ok(proxy.logs.some((line) => line.msg === 'alert rate limit reached: events held back until the next notice' && line.heldBack === 2), 'the third batch is held back: two per hour');
  messages = await sink.messages(0, 0);
  t.equal(alertsIn(messages).length, 2, 'no third notice');
  await clock.advance(3_600_000);
  await sendExecutables(proxy.port, 1);
  await clock.advance(500);
  messages = await sink.messages(10);
  const last = alertsIn(messages).map(noticeText).find((text) => text.includes('held back'));
  t.match(last ?? '', /2 earlier events were held back by the rate limit/, 'an hour later, the next notice counts them');
});

t.test('notices to recipients and senders, never to the sender of a virus', async (t) => {
  const sink = await SmtpSink.start(t);
  const logger = createLogger('silent');
  const notifier = new AlertNotifier(
    { to: [], from: 'mailmoat@example.net', batchSeconds: 0.1, maxPerHour: 10, notifyRecipients: true, notifySender: true },
    { upstream: { host: '127.0.0.1', port: sink.port }, roots: [], heloName: 'mailmoat.test' },
    logger,
  );
  const base: FlaggedMessage = {
    time: new Date().toISOString(),
    session: 's',
    protocol: 'smtp',
    direction: 'outbound',
    sender: '<carol@example.org>',
    recipients: ['<dave@example.net>'],
    action: 'rewrite',
    reason: 'stripped 1 part',
    findings: [{ part: '2', filename: 'setup.exe', kind: 'executable', reason: 'the name matches *.exe' }],
    quarantine: '20261122T090000Z-0123abcd',
  };
  notifier.report(base);
  notifier.report({ ...base, sender: '<forged@example.com>', findings: [{ part: '2', filename: 'x.zip', kind: 'virus', reason: 'infected with Win.Test' }] });
  notifier.report({ ...base, findings: [{ part: '1', filename: '', kind: 'ambiguous-headers', reason: 'two Content-Type headers' }] });
  await notifier.flush();
  const messages = await sink.messages(3, 5000);
  const to = (address: string) => messages.filter((message) => message.rcptArgs.some((args) => args.includes(address)));
  t.equal(to('dave@example.net').length, 2, 'the recipient hears about both (the executable and the virus)');
  t.equal(to('carol@example.org').length, 1, 'the sender of the executable hears about it');
  t.equal(to('forged@example.com').length, 0, 'the (forged) sender of a virus does not');
  t.match(to('dave@example.net').map(noticeText).join('\n'), /contained setup\.exe, which mailmoat removed\. Your administrator can release it \(quarantine id 20261122T090000Z-0123abcd\)/);
  t.equal(messages.length, 3, 'a finding that is neither a virus nor an executable raises nothing');
});
