// The packed package installed into an empty folder, as `npm install ./mailmoat-*.tgz`
// does on a clean machine: the tarball holds what an install needs (no dist/bench, the
// addon's sources, patches/, the postinstall script); the install applies the mailsplit
// patch and builds the SO_ORIGINAL_DST addon with no devDependency; the installed
// `mailmoat --help`, `demo` and `check` (an original-destination policy) work.
import t from 'tap';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayPolicy, pack, run } from '../helpers/package.js';

t.test('npm install of the tarball into an empty folder', async (t) => {
  const packed = await pack(t);
  for (const wanted of ['dist/src/bin.js', 'dist/src/cli.js', 'native/binding.gyp', 'native/original_dst.c', 'patches/@zone-eu+mailsplit+5.4.19.patch', 'scripts/postinstall.mjs', 'policies/default.yaml', 'deploy/mailmoat.service']) {
    t.ok(packed.files.includes(wanted), `the tarball holds ${wanted}`);
  }
  t.notOk(packed.files.some((path) => path.startsWith('dist/bench/') || path.startsWith('dist/test/')), 'no dist/bench, no dist/test');
  t.notOk(packed.files.some((path) => path.startsWith('native/build/')), 'no prebuilt addon: it is built at install');

  const dir = join(packed.dir, 'empty');
  await mkdir(dir);
  const installed = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', packed.tarball], dir);
  t.equal(installed.code, 0, `npm install: ${installed.stderr}`);
  t.notMatch(installed.stderr, /addon was not built|not applied/, 'postinstall: patch applied, addon built');
  const splitter = await readFile(join(dir, 'node_modules', '@zone-eu', 'mailsplit', 'lib', 'message-splitter.js'), 'latin1');
  t.match(splitter, 'let lf = chunk.indexOf(0x0a, i);', 'the installed mailsplit carries the patch');
  t.ok(existsSync(join(dir, 'node_modules', 'mailmoat', 'native', 'build', 'Release', 'original_dst.node')), 'the addon is built');

  const mailmoat = join(dir, 'node_modules', '.bin', 'mailmoat');
  const help = await run(mailmoat, ['--help'], dir);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: mailmoat .*\n[\s\S]*health/);
  await writeFile(join(dir, 'gateway.yaml'), gatewayPolicy(dir));
  const check = await run(mailmoat, ['check', '--policy', 'gateway.yaml'], dir);
  t.equal(check.code, 0, check.stderr);
  t.match(check.stdout, /# original-destination: the SO_ORIGINAL_DST addon loads/);
  const demo = await run(mailmoat, ['demo', '--policy', 'gateway.yaml'], dir);
  t.equal(demo.code, 0, demo.stderr);
  t.match(demo.stdout, /The message on the server is left as it is\./);
});
