#!/usr/bin/env node
/**
 * The command line (commander): start the proxy, check a policy, scan files,
 * create the interception CA, run the demo.
 * Exit codes: 0 success, 1 failure (invalid policy, I/O, a listener that cannot
 * bind), 2 usage errors.
 */
import { Command, CommanderError } from 'commander';
import { stringify as toYaml } from 'yaml';
import { loadPolicyFile, PolicyError } from './config/load.js';
import { createMailInspector } from './inspect/create.js';
import { DEFAULT_POLICY_FILE } from './package-root.js';
import { scanFiles } from './scan.js';
import { ClamdClient, describeClamdAddress } from './inspect/clamd.js';

/** How long `check` waits for clamd's PING and VERSION replies. */
const CHECK_TIMEOUT_MS = 5000;
import { createLogger } from './observe/log.js';
import { startProxy } from './main.js';
import { runDemo } from './demo/demo.js';
import { initCa } from './tls/ca.js';

const DEFAULT_POLICY = DEFAULT_POLICY_FILE;

const program = new Command()
  .name('mailmoat')
  .description('Transparent, protocol-inspecting SMTP/POP3 proxy')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError();

program
  .command('start')
  .description('run the proxy with the listeners of a policy file')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .action(async (options: { policy: string }) => {
    const policy = await loadPolicyFile(options.policy);
    const logger = createLogger(policy.log.level);
    const inspector = await createMailInspector(policy, { onEvent: (event, detail) => logger.warn({ detail }, event) });
    const proxy = await startProxy(policy, inspector, logger);
    const stop = (signal: string): void => {
      logger.info({ signal }, 'stopping');
      Promise.all([proxy.close(), inspector.close()]).then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

program
  .command('check')
  .description('validate a policy file and print the effective policy (every default filled in)')
  .option('--policy <file>', 'policy file (YAML)', DEFAULT_POLICY)
  .action(async (options: { policy: string }) => {
    const policy = await loadPolicyFile(options.policy);
    const inspector = await createMailInspector(policy);
    try {
      process.stdout.write(`# effective policy from ${options.policy}: valid (${inspector.executablePatterns} executable patterns)\n`);
      const scanners = inspector.scanners.length === 0 ? [{ ok: true, text: 'off' }] : await Promise.all(inspector.scanners.map(checkScanner));
      for (const scanner of scanners) process.stdout.write(`# antivirus: ${scanner.text}\n`);
      process.stdout.write(toYaml(policy));
      // The health check fails only when no clamd answers (the others are failover).
      if (!scanners.some((scanner) => scanner.ok)) process.exitCode = 1;
    } finally {
      await inspector.close();
    }
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
