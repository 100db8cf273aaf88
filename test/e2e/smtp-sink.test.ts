// End to end with real peers: Postfix smtp-sink as the upstream, swaks, Python smtplib and
// Postfix smtp-source as downstreams, corpus messages from ../shared/corpora.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SmtpSink, asDumped } from '../helpers/smtp-sink.js';
import { startTestProxy } from '../helpers/proxy.js';
import { corpusFile } from '../helpers/corpora.js';

const run = promisify(execFile);

t.test('swaks with PIPELINING delivers the MIME torture test unchanged', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port);
  const path = corpusFile('mailsplit/test/fixtures/mimetorture.eml');
  const { stdout } = await run('swaks', ['--server', `127.0.0.1:${proxy.port}`, '--from', 'alice@example.org', '--to', 'bob@example.net,carol@example.net', '--data', path, '--pipeline', '--silent', '1']);
  t.notMatch(stdout, /\*\*\*/, 'swaks reported no error');
  const [message] = await sink.messages(1);
  t.equal(message?.mailArgs, '<alice@example.org>');
  t.same(message?.rcptArgs, ['<bob@example.net>', '<carol@example.net>']);
  const original = asDumped(await readFile(path));
  t.equal(message?.body.replace(/\n+$/, ''), original.replace(/\n+$/, ''), 'the sink received the message as sent (swaks adds a final line break)');
  t.equal(proxy.transactions[0]?.verdict, 'pass');
  t.equal(proxy.transactions[0]?.recipients, 2);
});

t.test('Python smtplib sends a 3.7 MB message through the file spool unchanged', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port, { spool: { memory_threshold_bytes: 65536 } });
  const path = corpusFile('mailsplit/test/fixtures/large_image.eml');
  const script = [
    'import smtplib, sys',
    'data = open(sys.argv[2], "rb").read()',
    's = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)',
    's.ehlo("python.test")',
    'print(s.sendmail("py@example.org", ["rcpt@example.net"], data))',
    's.quit()',
  ].join('\n');
  const { stdout } = await run('python3', ['-c', script, String(proxy.port), path]);
  t.equal(stdout.trim(), '{}', 'smtplib: every recipient accepted');
  const [message] = await sink.messages(1);
  const original = asDumped(await readFile(path));
  t.ok(message !== undefined && message.body.replace(/\n+$/, '') === original.replace(/\n+$/, ''), `the sink received all ${original.length} characters unchanged`);
  t.equal(proxy.transactions[0]?.size, (await readFile(path)).length + ((await readFile(path)).toString('latin1').match(/(?<!\r)\n/g)?.length ?? 0), 'bare LFs became CRLF');
});

t.test('Python smtplib sees the upstream refusal, not a 250 (smtp-sink hard-bounces RCPT)', async (t) => {
  const sink = await SmtpSink.start(t, ['-B', '550 5.1.1 No such user', '-f', 'rcpt']);
  const proxy = await startTestProxy(t, sink.port);
  const script = [
    'import smtplib, sys',
    's = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)',
    'try:',
    '    s.sendmail("py@example.org", ["nobody@example.net"], b"Subject: x\\r\\n\\r\\nbody\\r\\n")',
    '    print("accepted")',
    'except smtplib.SMTPRecipientsRefused as e:',
    '    print("refused", list(e.recipients.values())[0][0])',
  ].join('\n');
  const { stdout } = await run('python3', ['-c', script, String(proxy.port)]);
  t.equal(stdout.trim(), 'refused 550');
});

t.test('smtp-source: 5 sessions x 8 messages all arrive', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port);
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-src-'));
  const file = join(dir, 'message.eml');
  await writeFile(file, 'Subject: from smtp-source\n\n.leading dot\nbody line\n');
  await run('smtp-source', ['-s', '5', '-m', '40', '-d', '-f', 'src@example.org', '-t', 'dst@example.net', '-F', file, `127.0.0.1:${proxy.port}`]);
  const messages = await sink.messages(40);
  t.equal(messages.length, 40);
  t.ok(messages.every((message) => message.body.startsWith('Subject: from smtp-source\n\n.leading dot\nbody line')), 'every message intact, dot unstuffed by the sink');
  t.equal(proxy.transactions.length, 40);
});
