// The policy file: defaults, strict keys with suggestions, key paths in errors.
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { parsePolicyText, PolicyError, loadPolicyFile } from '../../src/config/load.js';
import { parseHostPort } from '../../src/config/schema.js';

t.test('an empty policy is valid and every key has its default', async (t) => {
  const policy = parsePolicyText('', 'empty');
  t.same(policy.listeners, []);
  t.equal(policy.inspect.smtp, 'inbound');
  t.equal(policy.antivirus.clamd, 'off');
  t.equal(policy.limits.max_command_line_bytes, 4096);
  t.equal(policy.timeouts.final_reply_seconds, 600);
  t.ok(Object.isFrozen(policy.limits), 'the policy is frozen');
});

/** Dotted paths of every leaf key (arrays count as leaves). */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([key, child]) => keyPaths(child, prefix ? `${prefix}.${key}` : key));
}

t.test('policies/default.yaml is valid and states the defaults', async (t) => {
  const policy = await loadPolicyFile('policies/default.yaml');
  const empty = parsePolicyText('', 'empty');
  t.same({ ...policy, listeners: [] }, empty, 'the annotated file shows exactly the defaults');
  const written = keyPaths(parseYaml(await readFile('policies/default.yaml', 'utf8')));
  t.same(written.sort(), keyPaths(empty).sort(), 'and it writes every key out');
  t.same(policy.listeners, [{ protocol: 'smtp', listen: '0.0.0.0:2525', upstream: '127.0.0.1:25', tls: 'none', proxy_protocol: false }]);
});

t.test('a misspelt key names its path and the nearest valid key', async (t) => {
  const error = t.throws(() => parsePolicyText('limits:\n  max_mesage_bytes: 10\n', 'typo.yaml')) as PolicyError;
  t.type(error, PolicyError);
  t.match(error.message, /unknown key "limits\.max_mesage_bytes" \(did you mean "max_message_bytes"\?\)/);
  const top = t.throws(() => parsePolicyText('inspekt:\n  smtp: all\n', 'typo.yaml')) as PolicyError;
  t.match(top.message, /unknown key "inspekt" \(did you mean "inspect"\?\)/);
  const inList = t.throws(() => parsePolicyText('listeners:\n  - protocol: smtp\n    listen: 1.2.3.4:25\n    upstrem: 1.2.3.4:26\n', 'x')) as PolicyError;
  t.match(inList.message, /unknown key "listeners\[0\]\.upstrem" \(did you mean "upstream"\?\)/);
});

t.test('bad values name their path', async (t) => {
  const error = t.throws(() => parsePolicyText('inspect:\n  smtp: sometimes\nnetworks:\n  internal: [10.0.0.0/33]\n', 'x')) as PolicyError;
  t.match(error.message, /inspect\.smtp: /);
  t.match(error.message, /networks\.internal\[0\]: expected an address or CIDR range/);
  t.throws(() => parsePolicyText('antivirus:\n  clamd: maybe\n', 'x'), /antivirus\.clamd/);
  t.throws(() => parsePolicyText(':\n  - [', 'x'), /not valid YAML/);
});

t.test('host:port parsing', async (t) => {
  t.same(parseHostPort('127.0.0.1:25'), { host: '127.0.0.1', port: 25 });
  t.same(parseHostPort('[::1]:2525'), { host: '::1', port: 2525 });
  t.same(parseHostPort('mx.example.org:25'), { host: 'mx.example.org', port: 25 });
  t.equal(parseHostPort('127.0.0.1'), undefined);
  t.equal(parseHostPort('1.2.3.4:70000'), undefined);
  t.equal(parseHostPort('[nothost]:25'), undefined);
});

t.test('the README lists every top-level policy section', async (t) => {
  const readme = await readFile('README.md', 'utf8');
  for (const key of Object.keys(parsePolicyText('', 'x'))) t.match(readme, new RegExp(`\`${key}`), `README documents ${key}`);
});

t.test('every example policy in policies/ is valid, and cross-key rules hold', async (t) => {
  for (const name of (await readdir('policies')).filter((file) => file.endsWith('.yaml'))) {
    await t.resolves(loadPolicyFile(`policies/${name}`), name);
  }
  t.throws(() => parsePolicyText('listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:25\n    upstream: 127.0.0.1:26\n    starttls: intercept\n', 'x'), /starttls: intercept needs tls\.ca_cert and tls\.ca_key/);
  t.throws(() => parsePolicyText('tls:\n  ca_cert: ca.pem\n', 'x'), /tls\.ca_cert and tls\.ca_key go together/);
  t.throws(() => parsePolicyText('listeners:\n  - protocol: smtp\n    listen: 127.0.0.1:25\n    upstream: from-username\n', 'x'), /from-username is only for pop3 listeners/);
  t.throws(() => parsePolicyText('quarantine:\n  keep_for: 30 days\n', 'x'), /expected a duration such as 30d/);
});
