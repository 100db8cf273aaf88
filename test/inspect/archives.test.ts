// Zip archives inside messages: members listed without extraction and classified, nesting to a
// depth limit, encrypted members and bombs unscannable (answered fast, in bounded memory), the
// per-reason policy actions, and Office/EPUB containers not flagged for being zips.
import t from 'tap';
import { inspectMessage } from '../helpers/inspect.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORPORA } from '../helpers/corpora.js';
import { withAttachment } from '../helpers/containers.js';
import { storedZip } from '../../src/demo/stored-zip.js';
import { randomBytes } from 'node:crypto';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';

const HARAKA = join(CORPORA, 'haraka-plugin-attachment/test/fixtures');
const EXTRACTOR = join(CORPORA, 'RecursiveExtractor/RecursiveExtractor.Tests/TestData');

/** A message with one attachment, declared a zip unless said otherwise. */
const withZip = (name: string, bytes: Buffer, contentType = 'application/zip'): Buffer => withAttachment(name, bytes, contentType);

const examine = async (message: Buffer, policyText = '') => (await inspectMessage(message, policyText)).report;

const fixture = (dir: string, name: string): Buffer => withZip(name, readFileSync(join(dir, name)));

t.test('members are classified like attachments', async (t) => {
  const zip = await examine(readFileSync(join(CORPORA, 'rspamd/test/functional/messages/zip.eml')));
  t.match(zip.findings, [{ kind: 'executable', filename: 'f.zip/fake.exe' }]);
  t.equal(zip.verdict.action, 'rewrite');
  const valid = await examine(fixture(HARAKA, 'valid.zip'));
  t.equal(valid.verdict.action, 'pass', 'a zip of harmless files passes');
});

t.test('encrypted members are unscannable (encrypted)', async (t) => {
  for (const name of ['encrypt.zip', 'password.zip', 'encrypt-recursive.zip']) {
    const report = await examine(fixture(HARAKA, name));
    t.match(report.findings[0], { kind: 'unscannable', unscannable: 'encrypted' }, name);
    t.equal(report.verdict.action, 'rewrite', `${name}: stripped by default`);
  }
  const crypto = await examine(withZip('TestDataEncryptedZipCrypto.zip', readFileSync(join(EXTRACTOR, 'TestDataArchives/TestDataEncryptedZipCrypto.zip'))));
  t.ok(crypto.findings.length > 0 && crypto.findings.every((finding) => finding.unscannable === 'encrypted'), 'ZipCrypto members (RecursiveExtractor)');
});

t.test('a zip known only by its first bytes is listed whole, whatever the chunking', async (t) => {
  // Neither its name nor its type says zip; it is far larger than the sniff window (16 KB of base64).
  const zip = storedZip([{ name: 'filler.bin', data: randomBytes(60_000) }, { name: 'payload.exe', data: Buffer.from('MZ') }]);
  const message = withZip('data.bin', zip, 'application/octet-stream');
  const inspector = await createMailInspector(parsePolicyText('', 'test'));
  for (const size of [message.length, 65536, 4096, 777]) {
    const source = { size: message.length, open: async function* () { for (let offset = 0; offset < message.length; offset += size) yield message.subarray(offset, offset + size); } };
    const report = await inspector.examine(source);
    t.match(report.findings, [{ kind: 'executable', filename: 'data.bin/payload.exe' }], `chunks of ${size}`);
  }
  await inspector.close();
});

t.test('invalid archives are unscannable (corrupt)', async (t) => {
  for (const name of ['invalid.zip', 'invalid-in-valid.zip']) {
    const report = await examine(fixture(HARAKA, name));
    t.match(report.findings, [{ kind: 'unscannable', unscannable: 'corrupt' }], name);
  }
});

t.test('nesting beyond the depth limit is unscannable (too_deep)', async (t) => {
  const deep = await examine(fixture(HARAKA, '3layer.zip'), 'limits:\n  max_archive_depth: 2\n');
  t.match(deep.findings, [{ kind: 'unscannable', unscannable: 'too_deep', reason: /nested deeper than 2/ }]);
  const fine = await examine(fixture(HARAKA, '3layer.zip'));
  t.equal(fine.verdict.action, 'pass', 'within the default depth, three harmless layers pass');
});

t.test('zip bombs are answered without extracting them', async (t) => {
  const before = process.memoryUsage().rss;
  const bomb = await examine(withZip('zbsm.zip', readFileSync(join(EXTRACTOR, 'Bombs/zbsm.zip'))));
  // Judged from what the archive declares (its directory), not by inflating it: how long that takes is bench/'s business.
  t.match(bomb.findings, [{ kind: 'unscannable', unscannable: 'too_large', reason: /declares \d+ bytes/ }]);
  t.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, 'memory stayed bounded');
  const ratio = await examine(withZip('zbsm.zip', readFileSync(join(EXTRACTOR, 'Bombs/zbsm.zip'))), 'limits:\n  max_archive_expanded_bytes: 99999999999\n');
  t.match(ratio.findings, [{ kind: 'unscannable', unscannable: 'bomb', reason: /zip bomb/ }], 'the ratio limit catches it too');
});

t.test('per-reason actions: pass with a warning header, tempfail, reject', async (t) => {
  const encrypted = fixture(HARAKA, 'encrypt.zip');
  const passed = await examine(encrypted, 'inspect:\n  unscannable:\n    encrypted: pass\n');
  t.equal(passed.verdict.action, 'rewrite');
  t.match(passed.verdict, { summary: 'passed 1 uninspectable part' });
  const tempfail = await examine(encrypted, 'inspect:\n  unscannable:\n    encrypted: tempfail\n');
  t.match(tempfail.verdict, { action: 'tempfail', reason: /encrypted/ });
  const reject = await examine(encrypted, 'inspect:\n  unscannable:\n    encrypted: reject\n');
  t.equal(reject.verdict.action, 'reject');
});

t.test('Office containers are looked into, not flagged for being zips', async (t) => {
  // A minimal OOXML package: [Content_Types].xml and word/document.xml.
  const docx = storedZip([
    { name: '[Content_Types].xml', data: Buffer.from('<Types/>') },
    { name: 'word/document.xml', data: Buffer.from('<w:document/>') },
  ]);
  const report = await examine(withZip('letter.docx', docx, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'));
  t.equal(report.verdict.action, 'pass');
  const withMacro = storedZip([
    { name: '[Content_Types].xml', data: Buffer.from('<Types/>') },
    { name: 'word/embeddings/payload.exe', data: Buffer.from('MZ') },
  ]);
  const embedded = await examine(withZip('letter.docx', withMacro, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'));
  t.match(embedded.findings, [{ kind: 'executable', filename: 'letter.docx/word/embeddings/payload.exe' }], 'an executable inside one is found');
});
