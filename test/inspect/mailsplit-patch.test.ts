// patches/ is applied at install (scripts/postinstall.mjs): the installed mailsplit must carry every line the
// patch adds, or the MIME walk silently runs at the unpatched speed. What the patch changes is
// checked by behaviour elsewhere (corpus.test.ts: every split point, random chunkings, the corpora).
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);

t.test('every patch in patches/ is applied to the installed package of its version', async (t) => {
  const patches = readdirSync(join(ROOT, 'patches')).filter((name) => name.endsWith('.patch'));
  t.ok(patches.length > 0, 'patches/ holds a patch');
  for (const name of patches) {
    // @zone-eu+mailsplit+5.4.19.patch: package name with "+" for "/", then its version.
    const match = /^(.+)\+([^+]+)\.patch$/.exec(name);
    t.ok(match, `${name} names a package and a version`);
    if (!match) continue;
    const pkg = (match[1] ?? '').replace('+', '/');
    const installed = (require(`${pkg}/package.json`) as { version: string }).version;
    t.equal(installed, match[2], `${pkg} is installed at the version its patch was made for`);
    let file = '';
    for (const line of readFileSync(join(ROOT, 'patches', name), 'latin1').split('\n')) {
      const target = /^\+\+\+ b\/(.+)$/.exec(line);
      if (target) file = readFileSync(join(ROOT, target[1] ?? ''), 'latin1');
      else if (line.startsWith('+') && line.trim() !== '+') t.ok(file.includes(line.slice(1)), `${pkg}: applied: ${line.slice(1).trim()}`);
    }
  }
});
