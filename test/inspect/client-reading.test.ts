// The MIME reading of a mail client (issue 15): a Windows program behind a padded delimiter, inside
// message/news or message/x-anything, x-uuencode, BinHex (made by macutils' binhex) or TNEF (from
// MimeKit's sample) is found and stripped while the text arrives; prefix boundaries stay apart;
// message/partial is unscannable (its own policy key); clean forms pass byte for byte.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { inspectMessage } from '../helpers/inspect.js';
import { KEEP_TEXT, binhexOf, programForms, tnefWith } from '../helpers/forms.js';
import { corpusFile } from '../helpers/corpora.js';
import { peBytes } from '../helpers/pe.js';

t.test('a program in each form a client opens is stripped, the text is kept', async (t) => {
  for (const { label, message, marker } of programForms()) {
    const { report, output } = await inspectMessage(message);
    t.equal(report.verdict.action, 'rewrite', `${label}: rewritten`);
    t.ok(report.findings.some((finding) => finding.kind === 'executable-content'), `${label}: the content is sniffed as a program`);
    t.match(output, KEEP_TEXT, `${label}: the text arrives`);
    t.ok(message.toString('latin1').includes(marker), `${label}: the marker is in what was sent`);
    t.notOk(output.includes(marker), `${label}: the program does not arrive`);
  }
});

t.test('the name inside uuencode, BinHex and TNEF is checked like a part name', async (t) => {
  const harmless = Buffer.from('just text, no program\r\n'.repeat(20), 'latin1');
  for (const { label, message } of programForms(harmless).filter((form) => /uuencode|BinHex|TNEF/.test(form.label))) {
    const { report } = await inspectMessage(message);
    t.match(report.findings, [{ kind: 'executable', filename: 'evil.exe' }], `${label}: evil.exe by name`);
  }
});

t.test('transport padding on a delimiter line is ignored, a prefix boundary is not a delimiter', async (t) => {
  const message = [
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b \t',
    'Content-Type: multipart/alternative; boundary="b2"',
    '',
    '--b2',
    'Content-Type: text/plain',
    '',
    'one',
    '--b2 ',
    'Content-Type: application/octet-stream; name="a.exe"',
    '',
    'x',
    '--b2--\t',
    '--b--  ',
    '',
  ].join('\r\n');
  const { report } = await inspectMessage(message);
  t.match(report.findings, [{ part: '1.2', filename: 'a.exe', kind: 'executable' }], 'the part behind "--b2 " is the second of the inner multipart');
  const clean = message.replace('a.exe', 'a.txt');
  const passed = await inspectMessage(clean);
  t.equal(passed.report.verdict.action, 'pass', 'a clean padded message passes untouched');
});

t.test('a delimiter of a multipart further up ends every part inside it, as clients read it', async (t) => {
  const message = [
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    '--outer',
    'Content-Type: multipart/alternative; boundary="inner"',
    '',
    '--inner',
    'Content-Type: text/plain',
    '',
    KEEP_TEXT,
    '--outer ',
    'Content-Type: application/octet-stream; name="evil.exe"',
    '',
    'MZ',
    '--outer--',
    '',
  ].join('\r\n');
  const { report, output } = await inspectMessage(message);
  t.match(report.findings, [{ part: '2', filename: 'evil.exe', kind: 'executable' }], 'the part after the outer delimiter is a part of the outer multipart');
  t.match(output, KEEP_TEXT);
  t.notMatch(output, /\r\nMZ\r\n/, 'and it is stripped');
});

t.test('a line that is no header field ends the header block and starts the body, as clients read it', async (t) => {
  const pe = peBytes().toString('base64').replace(/.{76}/g, '$&\r\n');
  const message = ['Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', KEEP_TEXT, '--b', 'Content-Type: application/pdf; name="invoice.pdf"', 'Content-Transfer-Encoding: base64', pe, '--b--', ''].join('\r\n');
  const { report, output } = await inspectMessage(message);
  t.match(report.findings, [{ part: '2', filename: 'invoice.pdf', kind: 'executable-content' }], 'the base64 right after the headers (no empty line) is the body, decoded and sniffed');
  t.match(output, KEEP_TEXT);
  t.notOk(output.includes(pe.slice(0, 60)), 'and it is stripped');
  const clean = message.replace(pe, Buffer.from('%PDF-1.4 clean').toString('base64'));
  const passed = await inspectMessage(clean);
  t.equal(passed.report.verdict.action, 'pass', 'a clean part written that way passes untouched');
});

t.test('a boundary parameter ending in spaces is read without them', async (t) => {
  const message = ['Content-Type: multipart/mixed; boundary="b  "', '', '--b', 'Content-Type: text/plain', '', KEEP_TEXT, '--b', 'Content-Type: application/octet-stream; name="a.exe"', '', 'x', '--b--'].join('\r\n');
  const { report } = await inspectMessage(message);
  t.match(report.findings, [{ part: '2', filename: 'a.exe', kind: 'executable' }], 'the boundary is read without its trailing spaces (RFC 2046 bcharsnospace)');
});

t.test('message/partial is unscannable with its own policy key', async (t) => {
  const message = ['Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', KEEP_TEXT, '--b', 'Content-Type: message/partial; id="x@y"; number=1; total=2', '', 'From: a@b', '', 'half', '--b--', ''].join('\r\n');
  const stripped = await inspectMessage(message);
  t.match(stripped.report.findings, [{ kind: 'unscannable', unscannable: 'partial' }]);
  t.equal(stripped.report.verdict.action, 'rewrite', 'stripped by default');
  t.match(stripped.output, KEEP_TEXT);
  const refused = await inspectMessage(message, 'inspect:\n  unscannable:\n    partial: reject\n');
  t.equal(refused.report.verdict.action, 'reject', 'an administrator can refuse fragments');
});

t.test('TNEF: clean samples pass, a stream cut short is corrupt', async (t) => {
  const wrap = (tnef: Buffer): string =>
    ['Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'hi', '--b', 'Content-Type: application/ms-tnef; name="winmail.dat"', 'Content-Transfer-Encoding: base64', '', tnef.toString('base64'), '--b--', ''].join('\r\n');
  for (const sample of ['attachments', 'two-files', 'MAPI_ATTACH_DATA_OBJ', 'panic']) {
    const { report } = await inspectMessage(wrap(readFileSync(corpusFile(`MimeKit/UnitTests/TestData/tnef/${sample}.tnef`))));
    t.equal(report.verdict.action, 'pass', `${sample}.tnef passes`);
  }
  const cut = tnefWith('evil.exe', peBytes()).subarray(0, 1000);
  const { report } = await inspectMessage(wrap(cut));
  t.match(report.findings, [{ kind: 'unscannable', unscannable: 'corrupt' }], 'a record running past the end is corrupt');
});

t.test('BinHex of a harmless file passes', async (t) => {
  const hqx = binhexOf('notes.txt', Buffer.from('notes\n'));
  const message = ['Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: application/mac-binhex40; name="notes.hqx"', '', hqx, '--b--', ''].join('\r\n');
  const { report } = await inspectMessage(message);
  t.equal(report.verdict.action, 'pass');
});
