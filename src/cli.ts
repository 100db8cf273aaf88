#!/usr/bin/env node
/**
 * The command line (commander): start the proxy, check a policy, scan files,
 * create the interception CA, look after the quarantine, run the demo.
 * Exit codes: 0 success, 1 failure (invalid policy, I/O, a listener that cannot
 * bind), 2 usage errors.
 */
import { Command, CommanderError, Option } from 'commander';
import { stringify as toYaml } from 'yaml';
import { loadPolicyFile, PolicyError } from './config/load.js';
import { createMailInspector } from './inspect/create.js';
import { DEFAULT_POLICY_FILE } from './package-root.js';
import { scanFiles } from './scan.js';
import { ClamdClient, describeClamdAddress } from './inspect/clamd.js';

/** How long `check` waits for clamd's PING and VERSION replies. */
const CHECK_TIMEOUT_MS = 5000;
import { serve } from './cluster/serve.js';
import { supervise } from './cluster/supervisor.js';
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { runDemo } from './demo/demo.js';
import { initCa } from './tls/ca.js';
import { QuarantineStore, type QuarantineRecord } from './quarantine/store.js';
import { releaseEnvelope, submitMessage } from './quarantine/release.js';
import { FleetQuarantine } from './quarantine/fleet-view.js';
import { durationMs, parseHostPort, type Policy } from './config/schema.js';
import { submissionUpstream } from './policy/resolve.js';
import { requireAddon } from './accept/original-destination.js';
import { upstreamRoots } from './tls/upgrade.js';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import { DEFAULT_CLAMD_PATH } from './inspect/managed-clamd.js';
import { probeAddress, probeHealth } from './observe/health-probe.js';
import { generateArcKey } from './auth/keygen.js';
import { checkBind } from './accept/bind-check.js';

const DEFAULT_POLICY = DEFAULT_POLICY_FILE;

// A reader that stops reading (`mailmoat quarantine list | head -1`) ends the output: not a failure, no stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});

const program = new Command()
  .name('mailmoat')
  .description('Transparent, protocol-inspecting SMTP/POP3 proxy')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError();

program
  .command('start')
  .description('run the proxy with the listeners of a policy file (SIGHUP reloads it, SIGTERM drains and stops)')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .action(async (options: { policy: string }) => {
    const policy = await loadPolicyFile(options.policy);
    requireListeners(options.policy, policy);
    // node:cluster forks this same command: a forked process is a worker.
    if (cluster.isWorker) return serve(options.policy, policy, 'worker');
    const workers = policy.workers === 0 ? availableParallelism() : policy.workers;
    // One worker without recycling needs no supervisor; recycling does (the replacement starts first).
    const recycles = policy.recycle_after.sessions > 0 || policy.recycle_after.hours > 0;
    if (workers <= 1 && !recycles) return serve(options.policy, policy, 'single');
    return supervise(options.policy, policy, workers);
  });

program
  .command('check')
  .description('validate a policy file and print the effective policy (every default filled in)')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .action(async (options: { policy: string }) => {
    const policy = await loadPolicyFile(options.policy);
    requireListeners(options.policy, policy);
    // A managed clamd is the running proxy's: check never starts one (`mailmoat health` asks the running proxy).
    const managed = policy.antivirus.clamd === 'managed';
    const inspector = await createMailInspector(managed ? { ...policy, antivirus: { ...policy.antivirus, clamd: 'off' } } : policy);
    try {
      process.stdout.write(`# effective policy from ${options.policy}: valid (${inspector.executablePatterns} executable patterns)\n`);
      const scanners = managed ? [checkManagedClamd(policy)] : inspector.scanners.length === 0 ? [{ ok: true, text: 'off' }] : await Promise.all(inspector.scanners.map(checkScanner));
      for (const scanner of scanners) process.stdout.write(`# antivirus: ${scanner.text}\n`);
      for (const bind of await Promise.all(policy.listeners.map((listener) => checkBind(listener.listen)))) {
        process.stdout.write(`# listen ${bind.listen}: ${bind.text}\n`);
        if (!bind.ok) process.exitCode = 1;
      }
      if (policy.listeners.some((listener) => listener.upstream === 'original-destination')) {
        const addon = originalDestinationAddon();
        process.stdout.write(`# original-destination: ${addon ?? 'the SO_ORIGINAL_DST addon loads'}\n`);
        if (addon !== undefined) process.exitCode = 1;
      }
      process.stdout.write(toYaml(policy));
      // The health check fails only when no clamd answers (the others are failover).
      if (!scanners.some((scanner) => scanner.ok)) process.exitCode = 1;
    } finally {
      await inspector.close();
    }
  });

program
  .command('health')
  .description("ask the running proxy's admin listener (/healthz): listeners up, a scanner answering, spool writable; exit 0 ready, 1 not")
  .option('--admin <host:port>', 'the admin listener (default: admin.listen of the policy)')
  .option('--policy <file>', 'policy file (YAML), for admin.listen', DEFAULT_POLICY)
  .action(async (options: { admin?: string; policy: string }) => {
    const listen = options.admin ?? (await loadPolicyFile(options.policy)).admin.listen;
    if (listen === '') throw new Error(`admin.listen is off in ${options.policy}: give --admin host:port`);
    const target = parseHostPort(listen);
    if (target === undefined) throw new Error(`--admin: expected host:port, not ${listen}`);
    const answer = await probeHealth(probeAddress(target));
    (answer.ready ? process.stdout : process.stderr).write(`${answer.ready ? 'ready' : 'not ready'}: ${answer.text}\n`);
    if (!answer.ready) process.exitCode = 1;
  });

program
  .command('scan')
  .description('run the inspector offline on .eml files and report the verdicts')
  .argument('<files...>', 'message files (RFC 5322)')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .option('--json', 'one JSON object per file: {file, action, findings}')
  .option('--out-dir <dir>', 'write the bytes that would be forwarded to DIR/<file name>')
  .action(async (files: string[], options: { policy: string; json?: boolean; outDir?: string }) => {
    const policy = await loadPolicyFile(options.policy);
    const inspector = await createMailInspector(policy);
    const scanOptions = { json: options.json === true, ...(options.outDir === undefined ? {} : { outDir: options.outDir }) };
    try {
      if (!(await scanFiles(inspector, files, scanOptions, process.stdout, process.stderr))) process.exitCode = 1;
    } finally {
      await inspector.close();
    }
  });

program
  .command('ca')
  .description('the CA whose leaf certificates mailmoat presents when it intercepts TLS')
  .command('init')
  .description('create DIR/ca.pem and DIR/ca.key (mode 0600); never overwrites an existing CA')
  .requiredOption('--out <dir>', 'folder for ca.pem and ca.key')
  .option('--name <common-name>', 'the CA certificate\'s common name', 'mailmoat interception CA')
  .action(async (options: { out: string; name: string }) => {
    const { certPath, keyPath } = await initCa(options.out, options.name);
    process.stdout.write(
      `created ${certPath} (give it to your mail clients and senders to trust) and ${keyPath} (keep it secret)\n` +
        `policy: tls: { ca_cert: ${certPath}, ca_key: ${keyPath} }\n`,
    );
  });

program
  .command('arc')
  .description('the key mailmoat seals rewritten mail with (ARC, RFC 8617; auth.arc)')
  .command('keygen')
  .description('create DIR/<selector>.key (RSA or Ed25519, mode 0600; never overwrites) and print the DNS TXT record to publish')
  .requiredOption('--out <dir>', 'folder for the key')
  .requiredOption('--selector <selector>', 'the DNS selector, for example mailmoat2026')
  .requiredOption('--domain <domain>', 'the sealing domain (d=) receivers will trust')
  .addOption(new Option('--algorithm <algorithm>', 'rsa (rsa-sha256, 2048 bits) or ed25519 (ed25519-sha256, RFC 8463)').choices(['rsa', 'ed25519']).default('rsa'))
  .action(async (options: { out: string; selector: string; domain: string; algorithm: 'rsa' | 'ed25519' }) => {
    const { keyPath, record } = await generateArcKey(options.out, options.selector, options.domain, options.algorithm);
    process.stdout.write(
      `created ${keyPath} (keep it secret)\n` +
        `publish this DNS record:\n${record.zoneLine}\n` +
        `policy: auth: { arc: { domain: ${options.domain}, selector: ${options.selector}, private_key: ${keyPath} } }\n`,
    );
  });

const quarantine = program.command('quarantine').description('the originals of rewritten, tempfailed and rejected messages (quarantine.dir; with state.backend: redis://, every node\'s)');

const quarantineStore = async (policyFile: string): Promise<{ policy: Readonly<Policy>; store: QuarantineStore }> => {
  const policy = await loadPolicyFile(policyFile);
  return { policy, store: new QuarantineStore(policy.quarantine.dir) };
};

/** With a shared state backend, a command works on the fleet's entries; `run` gets undefined with a local one. */
const withFleet = async <T>(policyFile: string, run: (context: { policy: Readonly<Policy>; store: QuarantineStore; fleet: FleetQuarantine | undefined }) => Promise<T>): Promise<T> => {
  const { policy, store } = await quarantineStore(policyFile);
  const fleet = await FleetQuarantine.open(policy, store);
  try {
    return await run({ policy, store, fleet });
  } finally {
    await fleet?.close();
  }
};

const summaryLine = (record: QuarantineRecord): string =>
  [record.id, record.protocol, record.action, record.sender || '-', record.recipients.join(',') || record.user || '-', `${record.size} B`, record.findings.map((finding) => `${finding.kind}:${finding.filename || '(no name)'}`).join(' ')].join('  ');

quarantine
  .command('list')
  .description('one line per entry, oldest first: id, protocol, action, sender, recipients, size, findings (in a fleet: then the node that holds it)')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .option('--json', 'one JSON record per line')
  .action(async (options: { policy: string; json?: boolean }) => {
    await withFleet(options.policy, async ({ store, fleet }) => {
      const entries = fleet === undefined ? (await store.list()).map((record) => ({ record, node: undefined })) : await fleet.index.list();
      for (const { record, node } of entries) {
        const line = options.json === true ? JSON.stringify(node === undefined ? record : { ...record, node }) : `${summaryLine(record)}${node === undefined ? '' : `  node:${node}`}`;
        process.stdout.write(`${line}\n`);
      }
    });
  });

quarantine
  .command('show')
  .description('the record of an entry and the header of its original message')
  .argument('<id>')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .action(async (id: string, options: { policy: string }) => {
    await withFleet(options.policy, async ({ store, fleet }) => {
      const entry = fleet === undefined ? undefined : await fleet.index.get(id);
      const record = entry?.record ?? (await store.show(id));
      const original = (entry === undefined || fleet === undefined ? await store.original(id) : await fleet.original(entry)).toString('latin1');
      const headerEnd = original.search(/\r?\n\r?\n/);
      const shown = entry === undefined ? record : { ...record, node: entry.node };
      process.stdout.write(`${JSON.stringify(shown, null, 2)}\n\n${headerEnd === -1 ? original : original.slice(0, headerEnd)}\n`);
    });
  });

quarantine
  .command('release')
  .description('re-submit the original, unmodified, by SMTP to the upstream with its original envelope (or --to); in a fleet, once')
  .argument('<id>')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .option('--to <address...>', 'deliver to these recipients instead of the original ones')
  .option('--via <host:port>', 'the SMTP server to submit to (default: the upstream of the first SMTP listener)')
  .option('--again', 'in a fleet: release an entry that was released already')
  .action(async (id: string, options: { policy: string; to?: string[]; via?: string; again?: boolean }) => {
    await withFleet(options.policy, async ({ policy, store, fleet }) => {
      const entry = fleet === undefined ? undefined : await fleet.index.get(id);
      const record = entry?.record ?? (await store.show(id));
      const upstream = submissionUpstream(policy, options.via);
      if (upstream === undefined) throw new Error(options.via === undefined ? 'the policy has no SMTP listener with a fixed upstream: give --via host:port' : `--via: expected host:port, not ${options.via}`);
      const extraRoots = policy.tls.upstream_ca === '' ? '' : await readFile(policy.tls.upstream_ca, 'utf8');
      const envelope = releaseEnvelope(record, options.to ?? []);
      const original = entry === undefined || fleet === undefined ? await store.original(id) : await fleet.original(entry);
      // Two administrators on two nodes (or one who runs it twice) deliver it once.
      const claimed = fleet === undefined || options.again === true || (await fleet.index.claimRelease(id, (durationMs(policy.quarantine.keep_for) ?? 0) / 1000));
      if (!claimed) throw new Error(`${id} was released already (${(await fleet?.index.releasedBy(id)) ?? 'by another node'}): give --again to deliver it once more`);
      let reply: string;
      try {
        reply = await submitMessage({ upstream, roots: upstreamRoots(extraRoots), heloName: hostname() }, envelope, original);
      } catch (error) {
        await fleet?.index.unclaimRelease(id);
        throw error;
      }
      process.stdout.write(`released ${id}${entry === undefined ? '' : ` (held on ${entry.node})`} to ${envelope.to.join(', ')} via ${upstream.host}:${upstream.port}: ${reply}\n`);
    });
  });

quarantine
  .command('delete')
  .description('remove an entry (in a fleet: on the node that holds it)')
  .argument('<id>')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .action(async (id: string, options: { policy: string }) => {
    await withFleet(options.policy, async ({ store, fleet }) => {
      const entry = fleet === undefined ? undefined : await fleet.index.get(id);
      if (entry !== undefined && fleet !== undefined && !fleet.own(entry)) throw new Error(`${id} is held on node ${entry.node}: delete it there`);
      await new QuarantineStore(store.dir, undefined, fleet?.index).delete(id);
      process.stdout.write(`deleted ${id}\n`);
    });
  });

quarantine
  .command('purge')
  .description('remove entries older than a duration (the proxy applies quarantine.keep_for by itself, hourly)')
  .requiredOption('--older-than <duration>', 'for example 30d, 12h')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .action(async (options: { policy: string; olderThan: string }) => {
    const age = durationMs(options.olderThan);
    if (age === undefined) throw new Error(`--older-than: expected a duration such as 30d or 12h, not ${options.olderThan}`);
    await withFleet(options.policy, async ({ store, fleet }) => {
      process.stdout.write(`removed ${await new QuarantineStore(store.dir, undefined, fleet?.index).purge(age)} entries older than ${options.olderThan}\n`);
    });
  });

program
  .command('demo')
  .description('send sample messages through the proxy to a recording sink and show what happened')
  .option('--policy <file>', 'base policy (its listeners are replaced by the demo SMTP and POP3 listeners)', DEFAULT_POLICY)
  .action(async (options: { policy: string }) => {
    const policy = await loadPolicyFile(options.policy);
    const ok = await runDemo(policy, process.stdout);
    if (!ok) {
      process.stderr.write('demo: a sample did not arrive as expected\n');
      process.exitCode = 1;
    }
  });

/** The health part of `check`: does the configured clamd answer PING, and with which signatures. */
async function checkScanner(scanner: ClamdClient): Promise<{ ok: boolean; text: string }> {
  const address = scanner.address;
  const client = new ClamdClient(address, CHECK_TIMEOUT_MS);
  try {
    if (!(await client.ping())) return { ok: false, text: `clamd at ${describeClamdAddress(address)} did not answer PING with PONG` };
    return { ok: true, text: `clamd at ${describeClamdAddress(address)} answers: ${await client.version()}` };
  } catch (error) {
    return { ok: false, text: `clamd at ${describeClamdAddress(address)} does not answer: ${(error as Error).message}` };
  }
}

/** `antivirus.clamd: managed`: what `start` needs to run its own clamd, without starting one. */
function checkManagedClamd(policy: Readonly<Policy>): { ok: boolean; text: string } {
  const { database_dir: databaseDir } = policy.antivirus.managed;
  if (!existsSync(DEFAULT_CLAMD_PATH)) return { ok: false, text: `managed, but clamd is not installed (${DEFAULT_CLAMD_PATH}): apt-get install clamav-daemon` };
  if (!existsSync(databaseDir)) return { ok: false, text: `managed, but antivirus.managed.database_dir ${databaseDir} does not exist: run freshclam` };
  return { ok: true, text: `managed: mailmoat start runs ${DEFAULT_CLAMD_PATH} with the signatures in ${databaseDir} (not started by check; mailmoat health asks the running proxy)` };
}

/** start and check: a policy with no listener would run serving nothing. */
function requireListeners(file: string, policy: Readonly<Policy>): void {
  if (policy.listeners.length === 0) throw new PolicyError(file, ['listeners: none: mailmoat would serve nothing; add at least one']);
}

/** Why `upstream: original-destination` cannot work here, or undefined when the addon loads. */
function originalDestinationAddon(): string | undefined {
  try {
    requireAddon();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (error instanceof PolicyError) {
    process.stderr.write(`mailmoat: ${error.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`mailmoat: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
