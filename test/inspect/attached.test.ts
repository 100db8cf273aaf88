// Attached messages (message/rfc822), which mailsplit leaves closed: inline, as an attachment, and
// base64-encoded, each walked in turn; nesting past the depth limit is unscannable; the attached
// message holding an executable is replaced as a whole.
import t from 'tap';
import { inspectMessage } from '../helpers/inspect.js';

const INNER = [
  'From: x@example.org',
  'Subject: inner',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="in"',
  '',
  '--in',
  'Content-Type: text/plain',
  '',
  'the tool is attached',
  '--in',
  'Content-Type: application/octet-stream; name="evil.exe"',
  'Content-Transfer-Encoding: base64',
  '',
  'TVqQAA==',
  '--in--',
  '',
].join('\r\n');

function wrap(headers: string[], body: string, boundary = 'out'): Buffer {
  return Buffer.from(
    ['From: a@example.org', 'MIME-Version: 1.0', `Content-Type: multipart/mixed; boundary="${boundary}"`, '', `--${boundary}`, 'Content-Type: text/plain', '', 'forwarded below', `--${boundary}`, 'Content-Type: message/rfc822', ...headers, '', body, `--${boundary}--`, ''].join('\r\n'),
  );
}

const examine = (message: Buffer, policyText = '') => inspectMessage(message, policyText);

t.test('inline, attached and base64-encoded messages are all walked', async (t) => {
  const cases: [string, Buffer][] = [
    ['inline', wrap([], INNER)],
    ['attachment', wrap(['Content-Disposition: attachment; filename="fwd.eml"'], INNER)],
    ['base64', wrap(['Content-Disposition: attachment', 'Content-Transfer-Encoding: base64'], Buffer.from(INNER).toString('base64').replace(/.{76}/g, '$&\r\n'))],
  ];
  for (const [label, message] of cases) {
    const { report, output } = await examine(message);
    t.match(report.findings, [{ part: '2/2', filename: 'evil.exe', kind: 'executable' }], label);
    t.notMatch(output, /TVqQAA==/, `${label}: the executable is gone`);
    t.match(output, /forwarded below/, `${label}: the outer text is kept`);
  }
});

t.test('attached messages nested past the depth limit are unscannable', async (t) => {
  let message = INNER.replace('evil.exe', 'notes.txt').replace('TVqQAA==', 'aGk=');
  for (let level = 0; level < 4; level++) message = wrap([], message, `level${level}`).toString('latin1');
  const shallow = await examine(Buffer.from(message));
  t.equal(shallow.report.verdict.action, 'pass', 'four levels of harmless forwards pass');
  const limited = await examine(Buffer.from(message), 'limits:\n  max_mime_depth: 2\n');
  t.match(limited.report.findings, [{ kind: 'unscannable', unscannable: 'limits' }]);
});
