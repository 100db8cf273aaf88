// Containers end to end: a Windows program under a harmless name inside every container form,
// made by real tools, sent through the SMTP proxy into a real smtp-sink and retrieved through
// the POP3 proxy from a real Dovecot: the container is replaced by a notice, the text and the
// PDF beside it arrive as sent; clean containers (a tar of PDFs, a .docx, a 7z) pass byte for byte.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { RawClient } from '../helpers/client.js';
import { SmtpSink, asDumped } from '../helpers/smtp-sink.js';
import { startTestPop3Proxy, startTestProxy } from '../helpers/proxy.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { RawPop3 } from '../helpers/pop3-raw.js';
import { CORPORA } from '../helpers/corpora.js';
import { ContainerMaker, PDF, oleNative, program } from '../helpers/containers.js';

const maker = await ContainerMaker.create();
t.teardown(() => maker.remove());
const tree = await maker.tree('payload', { 'docs/invoice.pdf': program(), 'docs/terms.pdf': PDF });
const cleanTree = await maker.tree('clean', { 'a.pdf': PDF, 'b/c.pdf': PDF });
const vbaTree = await maker.tree('vba', { WordDocument: Buffer.from('word'), 'Macros/VBA/_VBA_PROJECT': Buffer.from([0xcc, 0x61, 0xff, 0xff]) });
const packageTree = await maker.tree('package', { WordDocument: Buffer.from('word'), 'ObjectPool/_1/\x01Ole10Native': oleNative('invoice.pdf', program()) });
const docmTree = await maker.tree('docm', { '[Content_Types].xml': Buffer.from('<Types/>'), 'word/document.xml': Buffer.from('<w:document/>'), 'word/vbaProject.bin': await maker.make('vba.bin', 'gsf', ['createole', '../vba.bin', 'WordDocument', 'Macros'], vbaTree) });
const docxTree = await maker.tree('docx', { '[Content_Types].xml': Buffer.from('<Types/>'), 'word/document.xml': Buffer.from('<w:document/>') });

const DANGEROUS: [string, Buffer][] = [
  ['documents.zip', await maker.make('p.zip', 'zip', ['-qr', '../p.zip', '.'], tree)],
  ['invoice.pdf.gz', await maker.compress('gzip', 'invoice.pdf', program())],
  ['invoice.pdf.bz2', await maker.compress('bzip2', 'invoice.pdf', program())],
  ['invoice.pdf.xz', await maker.compress('xz', 'invoice.pdf', program())],
  ['documents.tar', await maker.make('p.tar', 'tar', ['-cf', '../p.tar', '.'], tree)],
  ['documents.tgz', await maker.make('p.tgz', 'tar', ['-czf', '../p.tgz', '.'], tree)],
  ['documents.7z', await maker.make('p.7z', '7zz', ['a', '-bso0', '../p.7z', '.'], tree)],
  ['documents.dat', await maker.make('p.cab', 'gcab', ['-c', '-n', '../p.cab', 'docs/terms.pdf', 'docs/invoice.pdf'], tree)],
  ['documents.arj', await maker.make('p.arj', 'arj', ['a', '-y', '../p.arj', 'docs/terms.pdf', 'docs/invoice.pdf'], tree)],
  ['documents.cpio', await maker.make('p.cpio', 'sh', ['-c', 'find . -type f | sort | cpio -o -H newc --quiet > ../p.cpio'], tree)],
  ['documents.img', await maker.make('p.iso', 'xorriso', ['-as', 'mkisofs', '-quiet', '-o', '../p.iso', '.'], tree)],
  ['f.rar', readFileSync(join(CORPORA, 'RecursiveExtractor/RecursiveExtractor.Tests/TestData/TestDataArchives/TestDataEncrypted.rar'))],
  ['letter.doc', await maker.make('m.doc', 'gsf', ['createole', '../m.doc', 'WordDocument', 'Macros'], vbaTree)],
  ['letter2.doc', await maker.make('e.doc', 'gsf', ['createole', '../e.doc', 'WordDocument', 'ObjectPool'], packageTree)],
  ['letter.docm', await maker.make('l.docm', 'zip', ['-qr', '../l.docm', '.'], docmTree)],
];
const CLEAN: [string, Buffer][] = [
  ['pdfs.tar', await maker.make('c.tar', 'tar', ['-cf', '../c.tar', '.'], cleanTree)],
  ['pdfs.7z', await maker.make('c.7z', '7zz', ['a', '-bso0', '../c.7z', '.'], cleanTree)],
  ['letter.docx', await maker.make('c.docx', 'zip', ['-qr', '../c.docx', '.'], docxTree)],
];

const TEXT_PART = ['--outer', 'Content-Type: text/plain; charset=utf-8', '', 'The documents are attached.', ''].join('\r\n');
const PDF_PART = ['--outer', 'Content-Type: application/pdf; name="figures.pdf"', 'Content-Disposition: attachment; filename="figures.pdf"', 'Content-Transfer-Encoding: base64', '', PDF.toString('base64'), '--outer--', ''].join('\r\n');

const message = (name: string, bytes: Buffer): string =>
  [
    'From: a@example.org',
    'To: b@example.net',
    `Subject: form ${name}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    TEXT_PART + ['--outer', `Content-Type: application/octet-stream; name="${name}"`, `Content-Disposition: attachment; filename="${name}"`, 'Content-Transfer-Encoding: base64', '', bytes.toString('base64').replace(/.{76}/g, '$&\r\n'), ''].join('\r\n') + PDF_PART,
  ].join('\r\n');

/** The container's base64 lines are gone, the notice is there, the text and the PDF parts are intact. */
function checkStripped(t: Test, name: string, bytes: Buffer, received: string): void {
  const line = bytes.toString('base64').slice(0, 76);
  t.notOk(received.includes(line), `${name}: the container is gone`);
  t.match(received, /mailmoat removed the attachment/, `${name}: the notice is there`);
  t.ok(received.includes(asDumped(TEXT_PART)), `${name}: the text part is intact`);
  t.ok(received.includes(asDumped(PDF_PART)), `${name}: the PDF part is intact`);
}

t.test('SMTP: through the proxy into smtp-sink', async (t) => {
  const sink = await SmtpSink.start(t);
  const proxy = await startTestProxy(t, sink.port, {}, await createMailInspector(parsePolicyText('', 'test')));
  const all = [...DANGEROUS, ...CLEAN];
  for (const [name, bytes] of all) {
    const client = await RawClient.openTransaction(proxy.port);
    client.send(`${message(name, bytes)}.\r\n`);
    await client.waitForReplies(6);
    t.equal(client.replies[5]?.code, 250, `${name}: 250 from the upstream`);
    client.close();
  }
  const received = await sink.messages(all.length);
  const bySubject = (name: string): string => received.find((dump) => dump.body.includes(`Subject: form ${name}\n`))?.body ?? '';
  for (const [name, bytes] of DANGEROUS) checkStripped(t, name, bytes, bySubject(name));
  for (const [name, bytes] of CLEAN) t.equal(bySubject(name).replace(/\n+$/, ''), asDumped(message(name, bytes)).replace(/\n+$/, ''), `${name}: byte for byte`);
});

t.test('POP3: retrieved from Dovecot through the proxy', async (t) => {
  const forms = [...DANGEROUS.filter(([name]) => /\.(zip|gz|tgz|7z|rar|doc|docm)$/.test(name)), ...CLEAN];
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: forms.map(([name, bytes]) => Buffer.from(message(name, bytes), 'latin1')) }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, await createMailInspector(parsePolicyText('', 'test')));
  const direct = await RawPop3.connect(dovecot.port);
  const proxied = await RawPop3.connect(proxy.port);
  t.teardown(() => (direct.close(), proxied.close()));
  await direct.login('alice', 'secret');
  await proxied.login('alice', 'secret');
  for (const [index, [name, bytes]] of forms.entries()) {
    direct.send(`RETR ${index + 1}\r\n`);
    proxied.send(`RETR ${index + 1}\r\n`);
    const expected = await direct.multiline();
    const got = await proxied.multiline();
    if (CLEAN.some(([clean]) => clean === name)) t.ok(got.equals(expected), `${name}: identical wire bytes`);
    else checkStripped(t, name, bytes, asDumped(got));
  }
});
