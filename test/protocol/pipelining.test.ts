// RFC 2920 pipelining through the proxy: commands relayed in order, replies (multi-line too)
// paired through the FIFO, local refusals kept in their place, state from positive replies only.
import t from 'tap';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

t.test('a pipelined transaction gets its replies in order and the message arrives intact', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  const ehlo = await client.command('EHLO client.test');
  t.equal(ehlo.code, 250);
  t.same(ehlo.lines, ['upstream.test', 'PIPELINING', 'SIZE 10240000', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SMTPUTF8', 'DSN', 'AUTH PLAIN LOGIN', 'ETRN'], 'STARTTLS, CHUNKING, BINARYMIME, XCLIENT, XFORWARD removed');
  client.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nBDAT 10 LAST\r\nRCPT TO:<unknown@example.net>\r\nXCLIENT ADDR=1.2.3.4\r\nRCPT TO:<c@example.net>\r\nDATA\r\n');
  const replies = await client.waitForReplies(9);
  t.same(
    replies.slice(2).map((reply) => reply.code),
    [250, 250, 502, 550, 502, 250, 354],
    'MAIL, RCPT, BDAT refused, RCPT unknown, XCLIENT refused, RCPT, DATA: in command order',
  );
  client.send('Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n');
  await client.waitForReplies(11);
  t.same(client.codes().slice(9), [250, 221]);
  t.ok(await client.waitForClose(), 'closed after QUIT');
  t.same(upstream.payloads.map((payload) => payload.toString('latin1')), ['Subject: hi\r\n\r\n..dot\r\nbody\r\n'], 'the upstream received the message as sent');
  const commands = upstream.sessions[0]?.commands ?? [];
  t.notOk(commands.some((command) => /^(BDAT|XCLIENT)/i.test(command)), 'refused commands never reach the upstream');
  t.same(proxy.transactions.map((summary) => [summary.sender, summary.recipients, summary.verdict]), [['<a@example.org>', 2, 'pass']], 'two recipients accepted upstream');
});

t.test('DATA without an accepted recipient gets 554 from the proxy and no DATA upstream', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  client.send('EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<unknown@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  t.same(client.codes(), [220, 250, 250, 550, 554]);
  const noMail = await client.command('RSET');
  t.equal(noMail.code, 250);
  t.equal((await client.command('DATA')).code, 503, 'DATA without MAIL is 503');
  t.equal((await client.command('NOOP')).code, 250, 'the session goes on after refused DATA');
  t.notOk(upstream.sessions[0]?.commands.includes('DATA'));
  client.close();
});

t.test('STARTTLS is refused until a TLS policy applies; unknown verbs are answered locally', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  const tls = await client.command('STARTTLS');
  t.equal(tls.code, 454);
  const unknown = await client.command('FOOBAR x');
  t.equal(unknown.code, 500);
  t.same(upstream.sessions[0]?.commands, [], 'neither reached the upstream');
  client.close();
});

t.test('AUTH: continuation lines are relayed, never logged, and the state follows the reply', async (t) => {
  const secret = Buffer.from('\0alice\0s3cret-pass').toString('base64');
  const upstream = await ScriptedUpstream.start(t, {
    answer: (verb, line) => {
      if (verb === 'AUTH') return '334 ';
      if (line === secret) return '235 2.7.0 Authentication successful';
      return undefined;
    },
  });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  await client.command('EHLO c');
  t.equal((await client.command('AUTH PLAIN')).code, 334);
  t.equal((await client.command(secret)).code, 235, 'the SASL line went upstream as it was');
  t.equal((await client.command('NOOP')).code, 250, 'back to commands after 235');
  t.notOk(proxy.rawLogs.some((line) => line.includes(secret) || line.includes('s3cret')), 'the credentials are in no log line');
  client.close();
});

t.test('multi-line replies to pipelined commands keep their lines and their order', async (t) => {
  const upstream = await ScriptedUpstream.start(t, {
    answer: (verb) => (verb === 'HELP' ? '214-line one\r\n214-line two\r\n214 end' : verb === 'VRFY' ? '252-maybe\r\n252 2.0.0 cannot verify' : undefined),
  });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  client.send('HELP\r\nVRFY bob\r\nNOOP\r\n');
  await client.waitForReplies(4);
  t.same(client.replies.slice(1), [
    { code: 214, lines: ['line one', 'line two', 'end'] },
    { code: 252, lines: ['maybe', '2.0.0 cannot verify'] },
    { code: 250, lines: ['2.0.0 Ok'] },
  ]);
  client.close();
});
