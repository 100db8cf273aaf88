// Attachment names: decoding (RFC 2047, RFC 2231, duplicates, unquoted), normalisation, and the
// evasions the executable list must see through, without false positives.
import t from 'tap';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { classifyName, namesFromHeaders, normalizeName, parseExecutableList } from '../../src/inspect/filename.js';
import { wildcardPattern } from '../../src/policy/wildcard.js';

const list = parseExecutableList(await readFile('policies/executables.txt', 'utf8'));
const kinds = (name: string): string[] => classifyName(name, list).map((finding) => finding.kind).sort();

t.test('the shipped list covers the required types', async (t) => {
  for (const extension of ['exe', 'scr', 'js', 'vbs', 'lnk', 'hta', 'ps1', 'msi', 'jar', 'iso', 'img', 'vhd', 'vhdx', 'one', 'onepkg', 'bat', 'cmd', 'com', 'pif', 'cpl']) {
    t.ok(list.matches(`x.${extension}`), `*.${extension}`);
  }
  t.ok(list.patterns.length >= 100, `${list.patterns.length} patterns`);
});

t.test('names are decoded from every place they hide', async (t) => {
  t.same(namesFromHeaders(['Content-Disposition: attachment; filename="=?UTF-8?B?aW52b2ljZS5leGU=?="'], []), ['invoice.exe'], 'RFC 2047 B');
  t.same(namesFromHeaders(['Content-Disposition: attachment; filename="=?iso-8859-1?Q?caf=E9.scr?="'], []), ['café.scr'], 'RFC 2047 Q, latin-1');
  t.same(namesFromHeaders(["Content-Disposition: attachment;\r\n filename*0*=utf-8''%E2%80%AEfdp.;\r\n filename*1=exe"], []), ['\u202efdp.exe'], 'RFC 2231 continuation and charset');
  t.same(namesFromHeaders(['Content-Disposition: attachment; filename=my invoice.exe'], []), ['my invoice.exe'], 'unquoted with spaces');
  const duplicated = namesFromHeaders(['Content-Disposition: attachment; filename="readme.txt"; filename="payload.exe"'], ['Content-Type: application/octet-stream; name="other.pdf"']);
  t.ok(duplicated.includes('readme.txt') && duplicated.includes('payload.exe') && duplicated.includes('other.pdf'), `every reading is kept: ${duplicated.join(', ')}`);
});

t.test('normalisation: NFC, bidi controls, trailing dots and spaces, case', async (t) => {
  t.equal(normalizeName('Invoice.EXE. . '), 'invoice.exe');
  t.equal(normalizeName('\u202efdp.exe'), 'fdp.exe');
  t.equal(normalizeName('e\u0301.exe'), 'é.exe');
});

t.test('evasions are findings', async (t) => {
  t.same(kinds('statement.pdf.exe'), ['double-extension', 'executable']);
  t.same(kinds('invoice\u202efdp.exe'), ['bidi-control', 'executable']);
  t.same(kinds('photo.jpg                                   .scr'), ['double-extension', 'executable', 'hidden-extension'].sort());
  t.same(kinds('report.exe.'), ['executable'], 'a trailing dot Windows drops');
  t.same(kinds('Report.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}'), ['clsid']);
  t.same(kinds('archive.scr.gz'), ['executable'], 'a compressed executable');
  t.same(kinds('SETUP.JS'), ['executable'], 'case folded');
});

t.test('no false positives', async (t) => {
  for (const name of ['sales.2026.11.csv', 'letter.docx', 'report.pdf', 'photos.zip', 'notes.txt', 'setup-guide.pdf', 'v1.2.3.tar.gz', 'image.jpeg']) {
    t.same(kinds(name), [], name);
  }
});

t.test('property: the list answers as its patterns run one by one, in order, would', async (t) => {
  const shipped = await readFile('policies/executables.txt', 'utf8');
  const custom = ['*.exe', 'setup?.bin', '*.EXE', '*', '*.tar.gz', 'a*b', '*k', '*s', '*.scr', '*.scr', '*x*', '*?', '*\\[1]', '*.ex_'].join('\n');
  const lists = [shipped, custom, '*.one\n*.onepkg\n*e', 'x?y\n*y'].map((text) => ({ text, list: parseExecutableList(text) }));
  const reference = (text: string, name: string): string | undefined =>
    text
      .split(/\r?\n/)
      .map((line) => line.trim().toLowerCase())
      .filter((line) => line !== '' && !line.startsWith('#'))
      .find((pattern) => wildcardPattern(pattern).test(name));
  const piece = fc.constantFrom('.', 'exe', 'EXE', 'scr', '.tar', '.gz', 'one', 'onepkg', 'k', 'K', '\u212a', 's', '\u017f', 'S', 'ı', 'İ', 'é', '\n', ' ', '_', 'setup', 'x', 'y', '[1]', '\\', 'b', 'a', '\ud83d', 'ex_');
  const name = fc.oneof(fc.array(piece, { maxLength: 8 }).map((parts) => parts.join('')), fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 6 }));
  fc.assert(
    fc.property(fc.integer({ min: 0, max: lists.length - 1 }), name, fc.boolean(), (which, raw, normalize) => {
      const { text, list } = lists[which] as (typeof lists)[number];
      const candidate = normalize ? normalizeName(raw) : raw;
      return list.matches(candidate) === reference(text, candidate);
    }),
    { numRuns: 20000 },
  );
  t.pass('20000 names matched like the patterns run in order');
});
