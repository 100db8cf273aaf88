// The inspector on the shared corpora: the known executable cases are stripped, every other
// message passes untouched (no false positives), a rewrite changes only the stripped parts, and
// the verdict and output bytes do not depend on how the input is chunked.
import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Splitter } from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import type { InspectionReport } from '../../src/inspect/inspector.js';
import { CORPORA, corpusMessages } from '../helpers/corpora.js';

const inspector = await createMailInspector(parsePolicyText('', 'test'));

function source(bytes: Buffer, chunkSizes: number[] = []) {
  return {
    size: bytes.length,
    async *open() {
      let offset = 0;
      let index = 0;
      while (offset < bytes.length) {
        const size = chunkSizes.length === 0 ? bytes.length : Math.max(1, chunkSizes[index++ % chunkSizes.length] ?? 1);
        yield bytes.subarray(offset, offset + size);
        offset += size;
      }
    },
  };
}

async function output(report: InspectionReport, input: Buffer): Promise<Buffer> {
  if (report.verdict.action !== 'rewrite') return input;
  const chunks: Buffer[] = [];
  for await (const chunk of report.verdict.message.open()) chunks.push(chunk);
  await report.verdict.message.dispose();
  return Buffer.concat(chunks);
}


const EXPECTED_FLAGGED: Record<string, string[]> = {
  'rspamd/test/functional/messages/exe_attm.eml': ['executable', 'executable-content'],
  'rspamd/test/functional/messages/bad_ext.dotted_file_name.eml': ['executable'],
  'rspamd/test/functional/messages/next2last-doublebad.eml': ['executable'],
  'rspamd/test/functional/messages/next2last-digits_in_brackets.eml': ['executable'],
  'rspamd/test/functional/messages/next2last-digits_in_parens.eml': ['executable'],
  // Content sniffing finds PE, ELF and LNK parts; its EPUB's book.js matches *.js inside the archive;
  // its ACE archive is not opened (unsupported), its tar and OLE samples are cut short (corrupt).
  'rspamd/test/functional/messages/gargantua.eml': ['executable', 'executable-content', 'unscannable'],
  // RAR and gzip containers opened: f.rar holds fake.exe, 06.12.2017.gz holds 06.12.2017.scr (rspamd flags both).
  'rspamd/test/functional/messages/rar4.eml': ['executable'],
  'rspamd/test/functional/messages/rar-date-bad-ext.eml': ['executable'],
  // A tgz of a Node package: its .js files are Windows scripts by name (*.js), as inside a zip.
  'haraka-email-message/test/fixtures/haraka-tarball-attach.eml': ['executable'],
  'rspamd/test/functional/messages/zip.eml': ['executable'],
  'rspamd/test/functional/messages/zip-doublebad.eml': ['double-extension', 'executable'],
  // eicar.zip holds eicar.com.
  'rspamd/test/functional/messages/broken_richtext.eml': ['executable'],
  // ComplaintLetter_*.zip is cut short: a zip that cannot be listed is unscannable.
  'rspamd/test/functional/messages/mixed-html-zip.eml': ['unscannable'],
  // message/partial fragments (RFC 2046 5.2.2) cannot be inspected alone: unscannable (inspect.unscannable.partial).
  'MimeKit/UnitTests/TestData/partial/message-partial.0.eml': ['unscannable'],
  'MimeKit/UnitTests/TestData/partial/message-partial.1.eml': ['unscannable'],
  'MimeKit/UnitTests/TestData/partial/message-partial.2.eml': ['unscannable'],
  'MimeKit/UnitTests/TestData/partial/rfc2046.0.eml': ['unscannable'],
  'MimeKit/UnitTests/TestData/partial/rfc2046.1.eml': ['unscannable'],
  // Two Content-Type headers in the root: written back with the one that was inspected.
  'mime4j/core/src/test/resources/mimetools-testmsgs/multi-bad.msg': ['ambiguous-headers'],
};

t.test('every corpus message: the executable cases are stripped, everything else passes', async (t) => {
  const files = corpusMessages();
  t.ok(files.length > 300, `${files.length} corpus messages`);
  const flagged: string[] = [];
  for (const file of files) {
    const name = relative(CORPORA, file);
    const input = readFileSync(file);
    const started = Date.now();
    const report = await inspector.examine(source(input));
    const elapsed = Date.now() - started;
    if (elapsed > 5000) t.fail(`${name} took ${elapsed} ms`);
    if (report.verdict.action === 'pass') continue;
    flagged.push(name);
    const expected = EXPECTED_FLAGGED[name];
    if (expected === undefined) {
      t.fail(`unexpected ${report.verdict.action}: ${name}`, { findings: report.findings });
      continue;
    }
    t.equal(report.verdict.action, 'rewrite', name);
    t.same([...new Set(report.findings.map((finding) => finding.kind))].sort(), expected, `${name}: finding kinds`);
    await output(report, input);
  }
  t.same(flagged.sort(), Object.keys(EXPECTED_FLAGGED).sort(), 'exactly the expected messages were flagged');
});

interface SplitNode {
  headers: string;
  body: Buffer;
}

async function nodesOf(bytes: Buffer): Promise<SplitNode[]> {
  const splitter = new Splitter();
  const nodes: SplitNode[] = [];
  const collecting = (async () => {
    for await (const chunk of splitter as AsyncIterable<SplitterChunk>) {
      if (chunk.type === 'node') nodes.push({ headers: (chunk as MimeNode).getHeaders().toString('latin1'), body: Buffer.alloc(0) });
      else if (chunk.type === 'body') {
        const last = nodes[nodes.length - 1];
        if (last) last.body = Buffer.concat([last.body, chunk.value]);
      }
    }
  })();
  splitter.end(bytes);
  await collecting;
  return nodes;
}

const onlyAmbiguous = (name: string): boolean => EXPECTED_FLAGGED[name]?.join() === 'ambiguous-headers';

t.test('ambiguous headers are written back one way; every body byte stays', async (t) => {
  for (const name of Object.keys(EXPECTED_FLAGGED).filter(onlyAmbiguous)) {
    const input = readFileSync(join(CORPORA, name));
    const rewritten = await output(await inspector.examine(source(input)), input);
    const before = await nodesOf(input);
    const after = await nodesOf(rewritten);
    t.same(after.map((node) => node.body.toString('latin1')), before.map((node) => node.body.toString('latin1')), `${name}: the same parts and bodies`);
    const again = await inspector.examine(source(rewritten));
    t.notOk(again.findings.some((finding) => finding.kind === 'ambiguous-headers'), `${name}: the output reads one way`);
  }
});

t.test('a rewrite changes only the stripped parts (and adds X-Mailmoat headers to the root)', async (t) => {
  for (const name of Object.keys(EXPECTED_FLAGGED).filter((name) => !onlyAmbiguous(name))) {
    const input = readFileSync(join(CORPORA, name));
    const report = await inspector.examine(source(input));
    const rewritten = await output(report, input);
    const before = await nodesOf(input);
    const after = await nodesOf(rewritten);
    t.equal(after.length, before.length, `${name}: same number of parts`);
    // A header block that gained lines is re-serialised with CRLF (mailsplit); compare line content.
    const lines = (headers: string | undefined): string => (headers ?? '').replace(/\r\n/g, '\n');
    const unmarked = (headers: string | undefined): string => lines(headers).replace(/^X-Mailmoat-[^\n]*\n(?:[ \t][^\n]*\n)*/gm, '');
    let changed = 0;
    for (const [index, node] of before.entries()) {
      const other = after[index];
      if (other === undefined) continue;
      const sameHeaders = index === 0 ? unmarked(other.headers) === lines(node.headers) : other.headers === node.headers;
      if (other.body.equals(node.body) && sameHeaders) continue;
      changed++;
      t.match(other.headers, /Content-Type: text\/plain; charset=utf-8/i, `${name}: part ${index} became a text notice`);
      t.match(other.body.toString('latin1'), /mailmoat removed the attachment/, `${name}: part ${index} carries the notice`);
    }
    t.ok(changed > 0, `${name}: ${changed} part(s) replaced`);
    t.match(after[0]?.headers, /^X-Mailmoat-Action: stripped \d+ parts?\r?\n/m, `${name}: marked`);
    if (changed > 0 && before[0]?.body.equals(after[0]?.body ?? Buffer.alloc(0))) {
      t.equal(unmarked(after[0]?.headers), lines(before[0]?.headers), `${name}: the root headers are otherwise unchanged`);
    }
  }
});

t.test('property: any chunking gives the same verdict and the same output bytes', async (t) => {
  const samples = ['rspamd/test/functional/messages/exe_attm.eml', 'mailsplit/test/fixtures/mimetorture.eml', 'rspamd/test/functional/messages/gargantua.eml'].map((name) => readFileSync(join(CORPORA, name)));
  const references = await Promise.all(samples.map(async (input) => output(await inspector.examine(source(input)), input)));
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: samples.length - 1 }), fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 12 }), async (which, sizes) => {
      const input = samples[which] as Buffer;
      const bytes = await output(await inspector.examine(source(input, sizes)), input);
      return bytes.equals(references[which] as Buffer);
    }),
    { numRuns: 40 },
  );
  t.pass('40 random chunkings matched the reference output');
});

t.test('every split point: a message cut in two anywhere gives the same output bytes', async (t) => {
  for (const name of ['rspamd/test/functional/messages/exe_attm.eml', 'rspamd/test/functional/messages/zip.eml']) {
    // CRLF line endings everywhere, so that many cuts fall between a CR and its LF (the mailsplit trap).
    const input = Buffer.from(readFileSync(join(CORPORA, name), 'latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    const reference = await output(await inspector.examine(source(input)), input);
    let differing = 0;
    for (let cut = 1; cut < input.length; cut++) {
      const split = { size: input.length, open: async function* () { yield input.subarray(0, cut); yield input.subarray(cut); } };
      if (!(await output(await inspector.examine(split), input)).equals(reference)) differing++;
    }
    t.equal(differing, 0, `${name}: all ${input.length - 1} split points give the reference output`);
  }
});
