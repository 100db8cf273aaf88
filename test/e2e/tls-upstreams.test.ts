// The TLS-capable upstream harness against real clients that verify certificates: a throwaway
// PKI (bench/test-pki.ts), a real Postfix (STARTTLS and SMTPS) relaying to smtp-sink, and
// Dovecot with STLS and POP3S. swaks and Python's smtplib/poplib trust only the test CA.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestPki, type TestPki } from '../../bench/test-pki.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { startTestPostfix } from '../helpers/postfix.js';
import { SmtpSink } from '../helpers/smtp-sink.js';

const run = promisify(execFile);

const pkiDir = await mkdtemp(join(tmpdir(), 'mailmoat-pki-'));
t.teardown(() => rm(pkiDir, { recursive: true, force: true }));
const pki: TestPki = await createTestPki(pkiDir);

/** swaks, with its exit status and output also when it fails. */
async function swaks(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('swaks', args, { timeout: 20000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

/** Runs a Python script with the given arguments as sys.argv[1:] and returns what it prints. */
async function python(lines: string[], args: (string | number)[]): Promise<string> {
  const { stdout } = await run('python3', ['-c', lines.join('\n'), ...args.map(String)], { timeout: 20000 });
  return stdout;
}

t.test('the test PKI: server.pem chains to the CA, untrusted.pem does not', async (t) => {
  const { stdout } = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', pki.caFile, pki.certFile]);
  t.match(stdout, /server\.pem: OK/);
  await t.rejects(run('openssl', ['verify', '-CAfile', pki.caFile, pki.untrustedCertFile]), 'untrusted.pem does not verify against the CA');
  const { stdout: text } = await run('openssl', ['x509', '-in', pki.certFile, '-noout', '-ext', 'subjectAltName']);
  t.match(text, /DNS:localhost, IP Address:127\.0\.0\.1/, 'SANs DNS:localhost and IP:127.0.0.1');
});

t.test('swaks STARTTLS, verifying against the CA, through Postfix to smtp-sink', async (t) => {
  const sink = await SmtpSink.start(t);
  const postfix = await startTestPostfix(t, { certFile: pki.certFile, keyFile: pki.keyFile, relayPort: sink.port });
  t.equal(postfix.smtpsPort, undefined, 'no smtps listener unless asked for');
  const tls = ['--tls', '--tls-verify', '--tls-ca-path', pki.caFile];
  const envelope = ['--ehlo', 'swaks.test', '--from', 'alice@example.org', '--to', 'bob@example.net'];
  const { code, output } = await swaks(['--server', `127.0.0.1:${postfix.port}`, ...tls, ...envelope, '--header', 'Subject: over STARTTLS', '--body', 'relayed by a real Postfix']);
  t.equal(code, 0, 'swaks succeeded');
  t.match(output, /TLS started with cipher TLSv1\.[23]/, 'STARTTLS negotiated');
  t.match(output, /TLS peer DN="\/O=mailmoat tests\/CN=localhost"/, 'the CA-signed certificate was presented and verified');
  t.match(output, /250 2\.0\.0 Ok: queued as/, 'Postfix queued the message');
  const [message] = await sink.messages(1);
  t.equal(message?.mailArgs, '<alice@example.org>');
  // Postfix adds the DSN original recipient when it relays.
  t.match(message?.rcptArgs, [/^<bob@example\.net>( ORCPT=rfc822;bob@example\.net)?$/]);
  t.match(message?.body ?? '', /Subject: over STARTTLS\n[\s\S]*relayed by a real Postfix/, 'smtp-sink received the message');
});

t.test('swaks refuses a Postfix presenting the self-signed untrusted certificate', async (t) => {
  const sink = await SmtpSink.start(t);
  const postfix = await startTestPostfix(t, { certFile: pki.untrustedCertFile, keyFile: pki.untrustedKeyFile, relayPort: sink.port });
  const { code, output } = await swaks(['--server', `127.0.0.1:${postfix.port}`, '--tls', '--tls-verify', '--tls-ca-path', pki.caFile, '--quit-after', 'TLS']);
  t.not(code, 0, 'swaks failed');
  t.match(output, /certificate verify failed/, 'because the certificate does not verify');
});

t.test('Python smtplib SMTP_SSL on the smtps port, verifying against the CA, while a second Postfix runs', async (t) => {
  const sink = await SmtpSink.start(t);
  const [postfix, other] = await Promise.all([
    startTestPostfix(t, { certFile: pki.certFile, keyFile: pki.keyFile, relayPort: sink.port, smtps: true }),
    startTestPostfix(t, { certFile: pki.certFile, keyFile: pki.keyFile, relayPort: sink.port, smtps: true }),
  ]);
  t.not(postfix.dir, other.dir, 'each instance has its own folder');
  t.ok(postfix.smtpsPort !== undefined && other.smtpsPort !== undefined, 'both have an smtps port');
  const stdout = await python(
    [
      'import smtplib, ssl, sys',
      'context = ssl.create_default_context(cafile=sys.argv[1])',
      'for host, port, rcpt in (("127.0.0.1", sys.argv[2], "carol@example.net"), ("localhost", sys.argv[3], "dave@example.net")):',
      '    with smtplib.SMTP_SSL(host, int(port), context=context, timeout=10) as s:',
      '        print(s.sock.version(), s.sock.getpeercert()["subject"][-1][0][1], s.sendmail("py@example.org", [rcpt], b"Subject: over SMTPS\\r\\n\\r\\nimplicit TLS\\r\\n"))',
    ],
    [pki.caFile, postfix.smtpsPort ?? 0, other.smtpsPort ?? 0],
  );
  t.match(stdout, /^TLSv1\.[23] localhost \{\}\nTLSv1\.[23] localhost \{\}\n$/, 'both handshakes verified (by IP and by name), every recipient accepted');
  const messages = await sink.messages(2);
  const recipients = messages.map((message) => (message.rcptArgs[0] ?? '').replace(/ .*/, '')).sort();
  t.same(recipients, ['<carol@example.net>', '<dave@example.net>'], 'both Postfixes relayed to smtp-sink');
  t.ok(messages.every((message) => /Subject: over SMTPS\n[\s\S]*implicit TLS/.test(message.body)), 'the messages arrived intact');
});

t.test('Dovecot with TLS: poplib STLS and POP3_SSL, verifying against the CA, retrieve a seeded message', async (t) => {
  const message = Buffer.from('From: bob@example.org\r\nTo: alice@example.org\r\nSubject: seeded\r\n\r\nRetrieved over TLS.\r\n');
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [message] }], { tls: { certFile: pki.certFile, keyFile: pki.keyFile } });
  t.ok(dovecot.pop3sPort !== undefined && dovecot.pop3sPort !== dovecot.port, 'a separate pop3s port');
  const stdout = await python(
    [
      'import poplib, ssl, sys',
      'context = ssl.create_default_context(cafile=sys.argv[1])',
      'def session(p):',
      '    p.user("alice")',
      '    p.pass_("secret")',
      '    response, lines, octets = p.retr(1)',
      '    print(p.sock.version(), b"".join(line + b"\\r\\n" for line in lines).hex())',
      '    p.quit()',
      'p = poplib.POP3("127.0.0.1", int(sys.argv[2]), timeout=10)',
      'print("STLS" in p.capa())',
      'p.stls(context)',
      'session(p)',
      'session(poplib.POP3_SSL("localhost", int(sys.argv[3]), context=context, timeout=10))',
    ],
    [pki.caFile, dovecot.port, dovecot.pop3sPort ?? 0],
  );
  const [capa, stls, pop3s] = stdout.trim().split('\n');
  t.equal(capa, 'True', 'CAPA lists STLS on the plain port');
  for (const [name, line] of [['STLS', stls], ['POP3_SSL', pop3s]] as const) {
    const [version, hex] = (line ?? '').split(' ');
    t.match(version, /^TLSv1\.[23]$/, `${name}: TLS negotiated and verified`);
    t.equal(Buffer.from(hex ?? '', 'hex').toString('latin1'), message.toString('latin1'), `${name}: RETR 1 gives the seeded message byte for byte`);
  }
  t.equal(await dovecot.messageCount('alice'), 1, 'RETR left the message in place');
});

t.test('Dovecot without the tls option: no STLS, no pop3s port', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [] }]);
  t.equal(dovecot.pop3sPort, undefined, 'no pop3s port');
  const stdout = await python(['import poplib, sys', 'p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=10)', 'print("STLS" in p.capa())', 'p.quit()'], [dovecot.port]);
  t.equal(stdout.trim(), 'False', 'CAPA does not list STLS');
});
