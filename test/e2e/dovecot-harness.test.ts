// The Dovecot POP3 harness against Python's poplib: a seeded Maildir (one CRLF and one LF message)
// is listed and retrieved byte for byte, DELE+QUIT removes the file, and a wrong password is refused.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestDovecot } from '../helpers/dovecot.js';

const run = promisify(execFile);

const crlfMessage = Buffer.from('From: bob@example.org\r\nTo: alice@example.org\r\nSubject: CRLF\r\n\r\nFirst message, CRLF line endings.\r\n');
const lfMessage = Buffer.from('From: bob@example.org\nTo: alice@example.org\nSubject: LF\n\nSecond message, LF line endings.\n');

/** Runs a poplib script with the port as argv[1] and returns what it prints. */
async function poplib(port: number, body: string[]): Promise<string> {
  const script = ['import poplib, sys', 'p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=10)', ...body].join('\n');
  const { stdout } = await run('python3', ['-c', script, String(port)], { timeout: 20000 });
  return stdout;
}

t.test('poplib lists, retrieves and deletes seeded messages', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [crlfMessage, lfMessage] }]);
  t.equal(await dovecot.messageCount('alice'), 2, 'both messages are in the Maildir');
  const stdout = await poplib(dovecot.port, [
    'p.user("alice")',
    'p.pass_("secret")',
    'count, size = p.stat()',
    'print(count, size)',
    'response, lines, octets = p.retr(1)',
    'print(b"".join(line + b"\\r\\n" for line in lines).hex())',
    'p.dele(1)',
    'print(p.quit().decode())',
  ]);
  const [stat, retrieved, quit] = stdout.trim().split('\n');
  // Dovecot counts sizes with CRLF line endings, whatever the file holds.
  const lfAsCrlf = lfMessage.length + lfMessage.toString('latin1').split('\n').length - 1;
  t.equal(stat, `2 ${crlfMessage.length + lfAsCrlf}`, 'STAT: 2 messages, sizes in CRLF octets');
  t.equal(Buffer.from(retrieved ?? '', 'hex').toString('latin1'), crlfMessage.toString('latin1'), 'RETR 1 gives the first message byte for byte');
  t.match(quit, /^\+OK/, 'QUIT');
  t.equal(await dovecot.messageCount('alice'), 1, 'DELE 1 + QUIT removed one message file');
});

t.test('a wrong password is refused with -ERR', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [] }]);
  const stdout = await poplib(dovecot.port, [
    'p.user("alice")',
    'try:',
    '    p.pass_("wrong")',
    '    print("accepted")',
    'except poplib.error_proto as error:',
    '    print(error.args[0].decode())',
  ]);
  t.match(stdout, /^-ERR /, 'PASS with a wrong password: -ERR');
});
