// The packed package installed globally (`npm install -g`, here with --prefix so that the
// machine's own global folder is left alone: the same lib/node_modules + bin layout): the
// `mailmoat` on the prefix's bin runs --help, check on an original-destination policy
// (the addon was built at install), and the demo.
import t from 'tap';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gatewayPolicy, pack, run } from '../helpers/package.js';

t.test('npm install -g of the tarball', async (t) => {
  const packed = await pack(t);
  const prefix = join(packed.dir, 'global');
  const installed = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', packed.tarball], packed.dir);
  t.equal(installed.code, 0, `npm install -g: ${installed.stderr}`);
  t.notMatch(installed.stderr, /addon was not built|not applied/, 'postinstall: patch applied, addon built');
  t.ok(existsSync(join(prefix, 'lib', 'node_modules', 'mailmoat', 'native', 'build', 'Release', 'original_dst.node')), 'the addon is built');
  const mailmoat = join(prefix, 'bin', 'mailmoat');
  const help = await run(mailmoat, ['--help'], packed.dir);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: mailmoat/);
  await writeFile(join(packed.dir, 'gateway.yaml'), gatewayPolicy(packed.dir));
  const check = await run(mailmoat, ['check', '--policy', 'gateway.yaml'], packed.dir);
  t.equal(check.code, 0, check.stderr);
  t.match(check.stdout, /# original-destination: the SO_ORIGINAL_DST addon loads/);
  const demo = await run(mailmoat, ['demo', '--policy', 'gateway.yaml'], packed.dir);
  t.equal(demo.code, 0, demo.stderr);
  t.match(demo.stdout, /The message on the server is left as it is\./);
});
