// Differential reading (issue 15.2): every corpus message, every generated form and a fast-check
// generator of hostile structures is read by mailmoat's walk and by Python's email package
// (test/helpers/email_leaves.py, one process for all, over stdin/stdout). Every leaf Python finds
// (file name, SHA-256 of the decoded bytes) must be among the leaves mailmoat inspected. The test
// prints how many messages were compared and each disagreement (there must be none). Leaves
// Python reads that mailmoat cannot hold the same way are left out for a reason each (see
// email_leaves.py); whole messages only in EXCEPTIONS, each with its reason.
import t from 'tap';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { walkLeafParts, type LeafObserver } from '../../src/inspect/mime.js';
import { parsePolicyText } from '../../src/config/load.js';
import { CORPORA, corpusMessages } from '../helpers/corpora.js';
import { programForms } from '../helpers/forms.js';
import { bytesSource } from '../helpers/inspect.js';

const policy = parsePolicyText('', 'test');
const limits = {
  maxParts: policy.limits.max_mime_parts,
  maxDepth: policy.limits.max_mime_depth,
  maxHeaderBytes: policy.limits.max_mime_header_bytes,
  maxArchiveBytes: policy.limits.max_archive_bytes,
  maxAttachedMessageBytes: policy.limits.max_attached_message_bytes,
};

/**
 * Messages where Python reads a leaf mailmoat does not, and why that leaf cannot reach a user
 * unread. Keyed by corpus path; nothing else is skipped.
 */
const EXCEPTIONS: Record<string, string> = {
  // Each: a corpus message and why Python's leaf is not among mailmoat's although nothing is left unread.
  'mime4j/core/src/test/resources/mimetools-testmsgs/multi-2evil.msg':
    'the same bytes (3d-compress.gif); Python keeps RFC 2047 encoded-words inside a quoted filename as they are, mailmoat decodes them as clients do and checks the decoded name',
  'mime4j/core/src/test/resources/testmsgs/multipartemptypart.msg':
    "Python gives an empty part the multipart's epilogue (\"Epilogue\") as its body; RFC 2046 5.1.1 says the epilogue is ignored, and mailmoat does not inspect epilogues",
};

/** Python's leaves: [name, sha256, normalised key, why it is not compared or '']. */
type PythonLeaf = [string, string, string, string] | [null, string, string, string];

/** Text with trailing whitespace of each line and of the whole removed, CRLF read as LF (as email_leaves.py). */
const textKey = (text: Buffer): string =>
  createHash('sha256').update(Buffer.from(text.toString('latin1').replace(/[ \t]+(?=\r?\n|$)/g, '').replace(/\r\n/g, '\n').replace(/\n+$/, ''), 'latin1')).digest('hex');

const python = spawn('python3', [join(process.cwd(), 'test', 'helpers', 'email_leaves.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
const answers = createInterface({ input: python.stdout })[Symbol.asyncIterator]();
async function pythonLeaves(message: Buffer): Promise<PythonLeaf[] | { error: string }> {
  python.stdin.write(`${message.length}\n`);
  python.stdin.write(message);
  const answer = await answers.next();
  return JSON.parse(String(answer.value)) as PythonLeaf[] | { error: string };
}

/** mailmoat's leaves at every depth: names and SHA-256 of the decoded content. */
async function mailmoatLeaves(message: Buffer): Promise<{ names: string[]; sha: string; key: string }[]> {
  const found: { names: string[]; sha: string; key: string }[] = [];
  const observer: LeafObserver = {
    open(part) {
      const chunks: Buffer[] = [];
      return {
        write: (decoded) => chunks.push(decoded),
        end: () => {
          const whole = Buffer.concat(chunks);
          const key = /^text\//i.test(part.contentType) ? textKey(whole) : createHash('sha256').update(whole.toString('latin1').replace(/[\r\n]+$/, ''), 'latin1').digest('hex');
          found.push({ names: part.names, sha: createHash('sha256').update(whole).digest('hex'), key });
        },
      };
    },
  };
  await walkLeafParts(bytesSource(message), limits, 0, [], undefined, observer);
  return found;
}

let compared = 0;
const reasons = new Map<string, number>();
const disagreements: string[] = [];

async function compare(label: string, message: Buffer): Promise<void> {
  const theirs = await pythonLeaves(message);
  if (!Array.isArray(theirs)) return;
  let ours: { names: string[]; sha: string; key: string }[];
  try {
    ours = await mailmoatLeaves(message);
  } catch (error) {
    // mailmoat refuses to walk it (a limit or a structure it cannot read): tempfail, never passed unread.
    compared++;
    return;
  }
  compared++;
  for (const [name, sha, key, why] of theirs) {
    // Not compared, each reason explained in email_leaves.py: under message/partial (stripped whole), a
    // multipart Python could not split, a message/* Python parses undecoded.
    if (why !== '') {
      reasons.set(why, (reasons.get(why) ?? 0) + 1);
      continue;
    }
    // Same bytes, or for text the same text but trailing whitespace; a name Python gives must be one of ours.
    if (ours.some((leaf) => (leaf.sha === sha || leaf.key === key) && (name === null || leaf.names.includes(name)))) continue;
    if (EXCEPTIONS[label] !== undefined) continue;
    disagreements.push(`${label}: Python's leaf ${name ?? '(no name)'} ${sha.slice(0, 12)} not among mailmoat's`);
  }
}


/** Hostile structures: padded delimiters, odd case, duplicate parameters, nested wrappers, truncated parts. */
const hostile = fc
  .record({
    padding: fc.constantFrom('', ' ', '\t', ' \t ', '    '),
    typeCase: fc.constantFrom('multipart/mixed', 'MULTIPART/Mixed', 'Multipart/MIXED'),
    headerCase: fc.constantFrom('Content-Type', 'content-type', 'CONTENT-TYPE'),
    duplicateName: fc.boolean(),
    wrappers: fc.array(fc.constantFrom('message/rfc822', 'message/news', 'message/x-anything', 'MESSAGE/RFC822'), { maxLength: 3 }),
    payload: fc.uint8Array({ minLength: 1, maxLength: 300 }),
    encoding: fc.constantFrom('base64', 'BASE64', 'quoted-printable', '7bit', 'x-uuencode'),
    cut: fc.nat({ max: 100 }),
  })
  .map(({ padding, typeCase, headerCase, duplicateName, wrappers, payload, encoding, cut }) => {
    const bytes = Buffer.from(payload);
    const body = /base64/i.test(encoding)
      ? bytes.toString('base64').replace(/.{76}/g, '$&\r\n')
      : encoding === 'quoted-printable'
        ? [...bytes].map((byte) => `=${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('').replace(/.{72}/g, '$&=\r\n')
        : encoding === 'x-uuencode'
          ? `begin 644 f.bin\r\n${uuLines(bytes)}\r\n\`\r\nend`
          : bytes.toString('latin1').replace(/[\r\n]/g, 'x');
    let message = [
      `${headerCase}: ${typeCase}; boundary="b"${duplicateName ? '; boundary="b"' : ''}`,
      '',
      `--b${padding}`,
      'Content-Type: text/plain',
      '',
      'text',
      `--b${padding}`,
      `Content-Type: application/octet-stream; name="f.bin"${duplicateName ? '; name="f.bin"' : ''}`,
      `Content-Transfer-Encoding: ${encoding}`,
      '',
      body,
      `--b--${padding}`,
      '',
    ].join('\r\n');
    wrappers.forEach((wrapper, level) => {
      message = [`Content-Type: multipart/mixed; boundary="w${level}"`, '', `--w${level}`, `Content-Type: ${wrapper}`, '', message, `--w${level}--`, ''].join('\r\n');
    });
    return Buffer.from(cut > 90 ? message.slice(0, Math.floor((message.length * cut) / 100)) : message, 'latin1');
  });

function uuLines(bytes: Buffer): string {
  const lines: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 45) {
    const slice = bytes.subarray(offset, offset + 45);
    let line = String.fromCharCode(32 + slice.length);
    for (let i = 0; i < slice.length; i += 3) {
      const [a = 0, b = 0, c = 0] = [slice[i], slice[i + 1], slice[i + 2]];
      for (const six of [a >> 2, ((a & 3) << 4) | (b >> 4), ((b & 15) << 2) | (c >> 6), c & 63]) line += String.fromCharCode(six === 0 ? 96 : 32 + six);
    }
    lines.push(line);
  }
  return lines.join('\r\n');
}

t.teardown(() => {
  python.stdin.end();
});

t.test('every leaf Python finds is among the leaves mailmoat inspected', async (t) => {
  for (const file of corpusMessages()) await compare(relative(CORPORA, file), readFileSync(file));
  for (const { label, message } of programForms()) await compare(`generated: ${label}`, message);
  await fc.assert(
    fc.asyncProperty(hostile, async (message) => {
      await compare(`hostile: ${JSON.stringify(message.toString('latin1').slice(0, 200))}`, message);
    }),
    { numRuns: 200, seed: 15 },
  );
  t.comment(`messages compared: ${compared}, disagreements: ${disagreements.length}; leaves not compared: ${JSON.stringify(Object.fromEntries(reasons))}`);
  for (const line of disagreements) t.comment(line);
  t.equal(disagreements.length, 0, 'no disagreement');
});
