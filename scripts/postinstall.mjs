// npm postinstall of mailmoat, dependency-free (it runs in an installed copy, where no
// devDependency exists): (1) refuses a Node.js older than the floor with a clear message;
// (2) applies patches/*.patch (unified diffs made by patch-package) to the installed
// dependency of the patch's version, each hunk matched exactly and verified, and does
// nothing when already applied; (3) builds the SO_ORIGINAL_DST addon (native/) with the
// node-gyp that npm ships, using Node's own headers when they are installed beside it.
// A missing patch target or an addon that cannot build is reported, not fatal: mailmoat
// runs without the speed-up or without transparent mode (upstream: original-destination).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const say = (text) => process.stderr.write(`mailmoat: ${text}\n`);

// node:zlib crc32 (the demo's ZIP samples) exists from 20.15 and 22.2; keep in step with src/bin.ts.
const [major, minor] = process.versions.node.split('.').map(Number);
if (!((major === 20 && minor >= 15) || (major === 22 && minor >= 2) || major >= 23)) {
  say(`needs Node.js 20.15 or later (22.2 or later on 22), not ${process.versions.node}: install a current Node.js LTS (nodejs.org, or the NodeSource packages on Debian 12)`);
  process.exit(1);
}

/** Applies one unified diff to `base`; throws when a hunk's context does not match. */
function applyPatch(patchText, base) {
  const files = [];
  let current;
  let hunk;
  for (const line of patchText.split('\n')) {
    const target = /^\+\+\+ b\/(.+)$/.exec(line);
    const header = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (target) files.push((current = { path: target[1], hunks: [] }));
    else if (header && current) current.hunks.push((hunk = { start: Number(header[1]), newStart: Number(header[2]), old: [], new: [] }));
    else if (hunk && /^[ +-]/.test(line) && !line.startsWith('---')) {
      if (line[0] !== '+') hunk.old.push(line.slice(1));
      if (line[0] !== '-') hunk.new.push(line.slice(1));
    }
  }
  for (const file of files) {
    // patch-package names files from the project root: node_modules/<package>/<path>.
    const path = join(base, file.path.replace(/^node_modules\/(@[^/]+\/)?[^/]+\//, ''));
    const text = readFileSync(path, 'latin1');
    const lines = text.split('\n');
    const matches = (at, wanted) => wanted.every((entry, index) => lines[at + index] === entry);
    // Applied already: every hunk's new lines stand where the patched file has them.
    if (file.hunks.every((h) => matches(h.newStart - 1, h.new))) continue;
    let offset = 0;
    for (const h of file.hunks) {
      const at = h.start - 1 + offset;
      if (!matches(at, h.old)) throw new Error(`${file.path}: the hunk at line ${h.start} does not match`);
      lines.splice(at, h.old.length, ...h.new);
      offset += h.new.length - h.old.length;
    }
    writeFileSync(path, lines.join('\n'), 'latin1');
  }
}

function applyPatches() {
  const dir = join(ROOT, 'patches');
  if (!existsSync(dir)) return;
  const require = createRequire(join(ROOT, 'package.json'));
  for (const name of readdirSync(dir).filter((entry) => entry.endsWith('.patch'))) {
    // @zone-eu+mailsplit+5.4.19.patch: the package (a "+" for its "/"), then its version.
    const match = /^(.+)\+([^+]+)\.patch$/.exec(name);
    if (!match) continue;
    const pkg = match[1].replace('+', '/');
    let manifest;
    try {
      manifest = require.resolve(`${pkg}/package.json`);
    } catch {
      say(`patches/${name}: ${pkg} is not installed: not applied`);
      continue;
    }
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
    if (version !== match[2]) {
      say(`patches/${name}: ${pkg} is ${version}, not ${match[2]}: not applied (the MIME walk runs unpatched, slower)`);
      continue;
    }
    try {
      applyPatch(readFileSync(join(dir, name), 'latin1'), dirname(manifest));
    } catch (error) {
      say(`patches/${name}: ${error.message}: not applied (the MIME walk runs unpatched, slower)`);
    }
  }
}

function buildAddon() {
  const native = join(ROOT, 'native');
  if (!existsSync(join(native, 'binding.gyp'))) return;
  // npm runs scripts with its own node-gyp: npm_config_node_gyp names it.
  const gyp = process.env.npm_config_node_gyp;
  if (gyp === undefined || !existsSync(gyp)) {
    say('the SO_ORIGINAL_DST addon was not built (no node-gyp from npm): upstream: original-destination is unavailable');
    return;
  }
  const prefix = resolve(process.execPath, '..', '..');
  const headers = existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${prefix}`] : [];
  const result = spawnSync(process.execPath, [gyp, 'rebuild', `--directory=${native}`, ...headers], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) {
    const reason = (result.stderr ?? '').split('\n').filter((line) => /error|not found/i.test(line)).slice(0, 3).join('; ');
    say(`the SO_ORIGINAL_DST addon was not built (${reason || `node-gyp exited ${result.status}`}): upstream: original-destination (transparent mode) is unavailable; install python3, make and g++ and run npm rebuild mailmoat`);
  }
}

applyPatches();
buildAddon();
