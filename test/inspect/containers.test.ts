// Containers made by real tools, each carrying a Windows program under a harmless name
// (invoice.pdf): the program is found by its content in every format, clean containers pass
// untouched, and encrypted, corrupt, unsupported, too deep and bomb containers are
// unscannable with their own reason, bombs answered without extracting them.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectMessage } from '../helpers/inspect.js';
import { CORPORA } from '../helpers/corpora.js';
import { ContainerMaker, PDF, oleNative, program, withAttachment } from '../helpers/containers.js';

const EXTRACTOR = join(CORPORA, 'RecursiveExtractor/RecursiveExtractor.Tests/TestData');

const examine = async (name: string, bytes: Buffer, policy = '') => (await inspectMessage(withAttachment(name, bytes), policy)).report;

const maker = await ContainerMaker.create();
t.teardown(() => maker.remove());
const payload = { 'docs/invoice.pdf': program(), 'docs/terms.pdf': PDF };
const tree = await maker.tree('payload', payload);
const cleanTree = await maker.tree('clean', { 'a.pdf': PDF, 'b/c.pdf': PDF });

const programFound = (t: Test, findings: readonly { kind: string; filename: string }[], where: RegExp, label: string): void => {
  t.ok(findings.some((finding) => finding.kind === 'executable-content' && where.test(finding.filename)), `${label}: the program is found by its content (${JSON.stringify(findings.map((f) => `${f.kind} ${f.filename}`))})`);
};

t.test('zip members are judged by content, not only by name', async (t) => {
  const zip = await maker.make('payload.zip', 'zip', ['-qr', '../payload.zip', '.'], tree);
  const report = await examine('documents.zip', zip);
  programFound(t, report.findings, /documents\.zip\/docs\/invoice\.pdf$/, 'zip');
  t.equal(report.verdict.action, 'rewrite');
  t.notOk(report.findings.some((finding) => /terms\.pdf/.test(finding.filename)), 'the PDF beside it is no finding');
});

t.test('single-file compression: gzip, bzip2, xz', async (t) => {
  for (const tool of ['gzip', 'bzip2', 'xz'] as const) {
    const bytes = await maker.compress(tool, 'invoice.pdf', program());
    const report = await examine(`invoice.pdf.${tool === 'gzip' ? 'gz' : tool === 'bzip2' ? 'bz2' : 'xz'}`, bytes);
    programFound(t, report.findings, /invoice\.pdf$/, tool);
    t.equal(report.verdict.action, 'rewrite', `${tool}: stripped`);
  }
  const gz = await maker.compress('gzip', 'invoice.pdf', program());
  const renamed = await examine('report.dat', gz);
  programFound(t, renamed.findings, /report\.dat\/invoice\.pdf$/, 'a gzip known by its bytes, member named by its header');
});

t.test('tar, tgz, tar.bz2, tar.xz', async (t) => {
  for (const [name, flags] of [['payload.tar', '-cf'], ['payload.tgz', '-czf'], ['payload.tar.bz2', '-cjf'], ['payload.tar.xz', '-cJf']] as const) {
    const bytes = await maker.make(name, 'tar', [flags, `../${name}`, '.'], tree);
    const report = await examine(name, bytes);
    programFound(t, report.findings, /docs\/invoice\.pdf$/, name);
  }
  const clean = await maker.make('clean.tar', 'tar', ['-cf', '../clean.tar', '.'], cleanTree);
  const message = withAttachment('pdfs.tar', clean);
  const { report } = await inspectMessage(message);
  t.equal(report.verdict.action, 'pass', 'a tar of PDFs passes (its original bytes are forwarded)');
});

t.test('7z, cab, arj, cpio and ISO through their tools', async (t) => {
  const sevenZip = await maker.make('payload.7z', '7zz', ['a', '-bso0', '../payload.7z', '.'], tree);
  programFound(t, (await examine('payload.7z', sevenZip)).findings, /docs\/invoice\.pdf$/, '7z');
  const cab = await maker.make('payload.cab', 'gcab', ['-c', '-n', '../payload.cab', 'docs/terms.pdf', 'docs/invoice.pdf'], tree);
  programFound(t, (await examine('payload.cab', cab)).findings, /invoice\.pdf$/, 'cab');
  const arj = await maker.make('payload.arj', 'arj', ['a', '-y', '../payload.arj', 'docs/terms.pdf', 'docs/invoice.pdf'], tree);
  programFound(t, (await examine('payload.arj', arj)).findings, /invoice\.pdf$/, 'arj');
  await maker.make('payload.cpio', 'sh', ['-c', 'find . -type f | sort | cpio -o -H newc --quiet > ../payload.cpio'], tree);
  programFound(t, (await examine('payload.cpio', readFileSync(maker.path('payload.cpio')))).findings, /invoice\.pdf$/, 'cpio');
  const iso = await maker.make('payload.iso', 'xorriso', ['-as', 'mkisofs', '-quiet', '-o', '../payload.iso', '.'], tree);
  programFound(t, (await examine('scan.img', iso)).findings, /invoice\.pdf$/i, 'an ISO named .img');
  const clean7z = await maker.make('clean.7z', '7zz', ['a', '-bso0', '../clean.7z', '.'], cleanTree);
  t.equal((await examine('clean.7z', clean7z)).verdict.action, 'pass', 'a clean 7z passes');
});

t.test('RAR (RecursiveExtractor samples, read with bsdtar)', async (t) => {
  const clean = await examine('TestData.rar', readFileSync(join(EXTRACTOR, 'TestDataArchives/TestData.rar')));
  t.equal(clean.verdict.action, 'pass', 'RAR5 of text files');
  const rar4 = await examine('TestData.rar4.rar', readFileSync(join(EXTRACTOR, 'TestDataArchives/TestData.rar4')));
  t.equal(rar4.verdict.action, 'pass', 'RAR4 of text files');
  const encrypted = await examine('secret.rar', readFileSync(join(EXTRACTOR, 'TestDataArchives/TestDataEncrypted.rar')));
  t.match(encrypted.findings, [{ kind: 'unscannable' }], 'an encrypted RAR is unscannable');
});

t.test('nested: a program in a tgz in a zip', async (t) => {
  const tgz = await maker.make('inner.tgz', 'tar', ['-czf', '../inner.tgz', '.'], tree);
  const outer = await maker.tree('outer', { 'inner.tgz': tgz });
  const zip = await maker.make('outer.zip', 'zip', ['-qr', '../outer.zip', '.'], outer);
  programFound(t, (await examine('outer.zip', zip)).findings, /outer\.zip\/inner\.tgz\/inner\.tar\/.*invoice\.pdf$/, 'zip > tgz > tar');
  const deep = await examine('outer.zip', zip, 'limits:\n  max_archive_depth: 2\n');
  t.match(deep.findings, [{ kind: 'unscannable', unscannable: 'too_deep' }], 'one level too deep');
});

t.test('encrypted 7z and zip -e are unscannable (encrypted)', async (t) => {
  const sevenZip = await maker.make('secret.7z', '7zz', ['a', '-bso0', '-psecret', '-mhe=on', '../secret.7z', '.'], tree);
  t.match((await examine('secret.7z', sevenZip)).findings, [{ kind: 'unscannable', unscannable: 'encrypted' }], '7z with encrypted headers');
  const sevenZipNames = await maker.make('names.7z', '7zz', ['a', '-bso0', '-psecret', '../names.7z', '.'], tree);
  t.match((await examine('names.7z', sevenZipNames)).findings, [{ kind: 'unscannable', unscannable: 'encrypted' }], '7z with plain names');
  const zip = await maker.make('secret.zip', 'zip', ['-qr', '-P', 'secret', '../secret.zip', '.'], tree);
  t.match((await examine('secret.zip', zip)).findings, [{ kind: 'unscannable', unscannable: 'encrypted' }], 'zip -e');
});

t.test('bombs are answered from their first megabytes', async (t) => {
  for (const name of ['10GB.bz2', '10GB.gz.bz2', '10GB.xz.bz2', '10GB.7z.bz2', '10GB.zip.bz2', '10GB.rar.bz2']) {
    const started = Date.now();
    const report = await examine(name, readFileSync(join(EXTRACTOR, 'Bombs', name)));
    t.ok(report.findings.some((finding) => finding.kind === 'unscannable' && (finding.unscannable === 'bomb' || finding.unscannable === 'too_large')), `${name}: ${JSON.stringify(report.findings.map((f) => f.reason))}`);
    t.comment(`${name} answered in ${Date.now() - started} ms`);
  }
});

t.test('unsupported and corrupt containers', async (t) => {
  const ace = await examine('TestData.ace', readFileSync(join(EXTRACTOR, 'TestDataArchives/TestData.ace')));
  t.match(ace.findings, [{ kind: 'unscannable', unscannable: 'unsupported' }], 'ACE');
  const passAce = await examine('TestData.ace', readFileSync(join(EXTRACTOR, 'TestDataArchives/TestData.ace')), 'inspect:\n  unscannable:\n    unsupported: pass\n');
  t.match(passAce.verdict, { action: 'rewrite', summary: 'passed 1 uninspectable part' }, 'unsupported: pass');
  const corrupt = await examine('broken.7z', Buffer.concat([Buffer.from('377abcaf271c0004', 'hex'), Buffer.alloc(100, 7)]));
  t.match(corrupt.findings, [{ kind: 'unscannable', unscannable: 'corrupt' }], 'a broken 7z');
});

t.test('Office: macros and embedded packages in OLE and OOXML documents', async (t) => {
  const vba = await maker.tree('vba', { 'WordDocument': Buffer.from('word'), 'Macros/VBA/_VBA_PROJECT': Buffer.from([0xcc, 0x61, 0xff, 0xff]), 'Macros/VBA/dir': Buffer.from('dir') });
  const doc = await maker.make('macros.doc', 'gsf', ['createole', '../macros.doc', 'WordDocument', 'Macros'], vba);
  const macros = await examine('letter.doc', doc);
  t.match(macros.findings, [{ kind: 'office-macros', filename: /letter\.doc/ }], 'a .doc with a Macros storage');
  t.equal(macros.verdict.action, 'rewrite', 'stripped by default');
  t.equal((await examine('letter.doc', doc, 'inspect:\n  office:\n    macros: pass\n')).verdict.action, 'rewrite', 'macros: pass delivers it with a warning header');
  t.match((await examine('letter.doc', doc, 'inspect:\n  office:\n    macros: reject\n')).verdict, { action: 'reject' }, 'macros: reject');

  const packaged = await maker.tree('packaged', { 'WordDocument': Buffer.from('word'), 'ObjectPool/_1234/\x01Ole10Native': oleNative('invoice.pdf', program()) });
  const withPackage = await maker.make('package.doc', 'gsf', ['createole', '../package.doc', 'WordDocument', 'ObjectPool'], packaged);
  const embedded = await examine('letter.doc', withPackage);
  t.match(embedded.findings, [{ kind: 'office-embedded' }], 'an embedded package');
  programFound(t, embedded.findings, /invoice\.pdf$/, 'the program inside the package');
  const embeddedPass = await examine('letter.doc', withPackage, 'inspect:\n  office:\n    embedded: pass\n');
  t.equal(embeddedPass.verdict.action, 'rewrite', 'embedded: pass still strips the program inside');

  const docm = await maker.tree('docm', { '[Content_Types].xml': Buffer.from('<Types/>'), 'word/document.xml': Buffer.from('<w:document/>'), 'word/vbaProject.bin': doc });
  const docmBytes = await maker.make('letter.docm', 'zip', ['-qr', '../letter.docm', '.'], docm);
  t.match((await examine('letter.docm', docmBytes)).findings, [{ kind: 'office-macros', filename: /letter\.docm\/word\/vbaProject\.bin/ }], 'OOXML vbaProject.bin');
  const oleObject = await maker.tree('xlsx', { '[Content_Types].xml': Buffer.from('<Types/>'), 'xl/workbook.xml': Buffer.from('<workbook/>'), 'xl/embeddings/oleObject1.bin': withPackage });
  const xlsx = await maker.make('book.xlsx', 'zip', ['-qr', '../book.xlsx', '.'], oleObject);
  const xlsxReport = await examine('book.xlsx', xlsx);
  t.match(xlsxReport.findings, [{ kind: 'office-embedded' }], 'an oleObject*.bin holding a package');

  const clean = await maker.tree('docx', { '[Content_Types].xml': Buffer.from('<Types/>'), 'word/document.xml': Buffer.from('<w:document/>'), 'word/media/image1.png': Buffer.from('\x89PNG\r\n') });
  const docx = await maker.make('clean.docx', 'zip', ['-qr', '../clean.docx', '.'], clean);
  t.equal((await examine('letter.docx', docx)).verdict.action, 'pass', 'a .docx without macros passes');
  const plainDoc = await maker.make('plain.doc', 'gsf', ['createole', '../plain.doc', 'WordDocument'], vba);
  t.equal((await examine('plain.doc', plainDoc)).verdict.action, 'pass', 'a .doc without macros passes');
});

t.test('RecursiveExtractor samples of every format are read: nothing unscannable, no executable content', async (t) => {
  const samples = ['TestData.a', 'TestData.bsd.ar', 'sysvbanner_1.0-17fakesync1_amd64.deb', 'TestData.wim', 'TestData.iso', 'UdfTest.iso', 'TestData.7z', '100trees.7z', 'TestData.tar.gz', 'TestData.tar.bz2', 'TestData.tar.xz', 'TestData.arj', 'TestData.zip', 'TestDataArchivesNested.zip', 'HfsSampleUDCO.dmg'];
  for (const name of samples) {
    const report = await examine(name.replace(/\.(a|ar)$/, '.dat'), readFileSync(join(EXTRACTOR, 'TestDataArchives', name)));
    // Names such as *.iso and *.deb are on the executable list: only what reading the container found counts here.
    t.same(report.findings.filter((finding) => finding.kind === 'unscannable' || finding.kind === 'executable-content'), [], name);
  }
  const nested = await examine('NestedFormatsTest.zip', readFileSync(join(EXTRACTOR, 'TestDataArchives/NestedFormatsTest.zip')));
  t.match(nested.findings, [{ kind: 'unscannable', unscannable: 'unsupported', filename: /content\.ace$/ }], 'the ACE archive nested in it is not opened');
});

t.test('property: damaged containers are an ordinary case (a finding or none, never a throw)', async (t) => {
  const { inspectArchive } = await import('../../src/inspect/archive.js');
  const { parseExecutableList } = await import('../../src/inspect/filename.js');
  const list = parseExecutableList('*.exe\n');
  const limits = { maxDepth: 8, maxMembers: 3000, maxExpandedBytes: 64 * 1024 * 1024, maxExpansionRatio: 250, maxNestedBytes: 8 * 1024 * 1024, maxSeconds: 20 };
  const vba = await maker.tree('fuzz-vba', { WordDocument: Buffer.from('word'), 'Macros/VBA/_VBA_PROJECT': Buffer.from('vba'), 'ObjectPool/_1/\x01Ole10Native': oleNative('invoice.pdf', program()) });
  const originals: [string, Buffer][] = [
    ['a.zip', await maker.make('fuzz.zip', 'zip', ['-qr', '../fuzz.zip', '.'], tree)],
    ['a.tgz', await maker.make('fuzz.tgz', 'tar', ['-czf', '../fuzz.tgz', '.'], tree)],
    ['a.doc', await maker.make('fuzz.doc', 'gsf', ['createole', '../fuzz.doc', 'WordDocument', 'Macros', 'ObjectPool'], vba)],
    ['a.7z', await maker.make('fuzz.7z', '7zz', ['a', '-bso0', '../fuzz.7z', '.'], tree)],
  ];
  const fc = (await import('fast-check')).default;
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: originals.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(), async (which, flips, cut) => {
      const [name, original] = originals[which] as [string, Buffer];
      const damaged = Buffer.from(original.subarray(0, Math.max(16, original.length - (cut % 64))));
      for (const [offset, value] of flips) damaged[offset % damaged.length] = value;
      const findings = await inspectArchive(damaged, [name], '', { list, limits });
      return Array.isArray(findings);
    }),
    { numRuns: 120 },
  );
  t.pass('120 damaged containers answered');
});
