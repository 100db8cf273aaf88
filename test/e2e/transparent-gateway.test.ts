/**
 * `upstream: original-destination` end to end, in network namespaces this test creates (as root)
 * and removes: a client namespace sends mail with Python's smtplib to the server's port 25; the
 * gateway's nat PREROUTING REDIRECT hands the connection to a real `mailmoat start` in the gateway,
 * which recovers the original destination (SO_ORIGINAL_DST), inspects, and relays to a real Postfix
 * smtp-sink in the server namespace. Also through mailmoat: a connection whose original destination
 * is mailmoat itself (421 4.4.6 and a log line), and one made straight to mailmoat (421 4.4.0).
 * Without root or namespaces it fails with the reason; it never skips.
 */
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { demoSamples } from '../../src/demo/samples.js';
import { ADDON_PATH } from '../../src/accept/original-destination.js';
import { PACKAGE_ROOT } from '../../src/package-root.js';
import { createTopology, LineReader, type NetNs, type Topology } from '../helpers/netns.js';
import { asDumped, parseDump, type SinkMessage } from '../helpers/smtp-sink.js';
import type { SmtplibResult } from '../helpers/smtplib.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');
const SMTP_CLIENT = fileURLToPath(new URL('../helpers/smtp_client.py', import.meta.url));
const MAILMOAT_PORT = 10025;

/** Prints the first line the server at argv[1]:argv[2] sends, then closes; exits 1 after 10 s. */
const FIRST_LINE_SCRIPT = `
import { connect } from 'node:net';
const [host, port] = process.argv.slice(1);
const socket = connect({ host, port: Number(port) });
let data = '';
setTimeout(() => { console.error('no line within 10 s'); process.exit(1); }, 10000).unref();
socket.on('data', (chunk) => { data += chunk; if (data.includes('\\n')) { process.stdout.write(data.slice(0, data.indexOf('\\n') + 1)); socket.destroy(); } });
socket.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/** Resolves once something in `ns` accepts connections on host:port. */
async function waitForPort(topology: Topology, ns: NetNs, host: string, port: number): Promise<void> {
  const probe = `import { connect } from 'node:net'; const s = connect({ host: '${host}', port: ${port} }); s.on('connect', () => process.exit(0)); s.on('error', () => process.exit(1));`;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(100)) {
    try {
      await topology.exec(ns, process.execPath, ['--input-type=module', '-e', probe]);
      return;
    } catch {
      // not yet
    }
  }
  throw new Error(`nothing listens on ${host}:${port} in ${ns.name} after 10 s`);
}

/** Every dump smtp-sink wrote, once `count` exist. */
async function dumps(dir: string, count: number): Promise<SinkMessage[]> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && (await readdir(dir)).length < count; ) await sleep(50);
  await sleep(100);
  const names = await readdir(dir);
  return Promise.all(names.map(async (name) => parseDump(await readFile(join(dir, name), 'latin1'))));
}

t.test('a gateway with iptables REDIRECT and upstream: original-destination (root)', async (t) => {
  t.setTimeout(120_000);
  t.ok(ADDON_PATH, 'the addon path is known');
  const topology = await createTopology(t);
  const { client, gateway, server } = topology;

  const sinkDir = await mkdtemp(join(tmpdir(), 'mailmoat-gw-sink-'));
  await chmod(sinkDir, 0o777);
  const work = await mkdtemp(join(tmpdir(), 'mailmoat-gw-'));
  t.teardown(() => Promise.all([rm(sinkDir, { recursive: true, force: true }), rm(work, { recursive: true, force: true })]));

  topology.spawnIn(server, 'smtp-sink', ['-u', 'nobody', '-d', `${sinkDir}/%Y%m%d%H%M%S.`, `${server.address}:25`, '100'], { stdio: 'ignore' });
  await waitForPort(topology, server, server.address, 25);

  // The client network is outside networks.internal: its mail is inbound, so it is inspected.
  const policy = join(work, 'policy.yaml');
  await writeFile(
    policy,
    [
      'listeners:',
      '  - protocol: smtp',
      `    listen: 0.0.0.0:${MAILMOAT_PORT}`,
      '    upstream: original-destination',
      'networks:',
      '  internal: [192.168.0.0/16]',
      'workers: 1',
      'admin:',
      '  listen: ""',
      'quarantine:',
      `  dir: ${join(work, 'quarantine')}`,
      '',
    ].join('\n'),
  );
  const mailmoat = new LineReader(topology.spawnIn(gateway, process.execPath, [CLI, 'start', '--policy', policy]));
  await mailmoat.next((line) => line.includes('"listening"'));
  await topology.redirect(25, MAILMOAT_PORT);
  // Traffic for the gateway's server-side address at mailmoat's own port, REDIRECTed: a loop.
  await topology.redirect(MAILMOAT_PORT, MAILMOAT_PORT, { destination: gateway.serverSide.address });

  const send = async (message: Buffer): Promise<SmtplibResult> => {
    const options = JSON.stringify({ host: server.address, port: 25, mode: 'plain' });
    const { stdout } = await topology.exec(client, 'python3', [SMTP_CLIENT, options], { input: message.toString('latin1'), timeoutMs: 60_000 });
    return JSON.parse(stdout) as SmtplibResult;
  };

  const samples = demoSamples();
  const executable = samples.find((sample) => sample.title.startsWith('invoice.pdf.exe'));
  const report = samples.find((sample) => sample.title.startsWith('report with a PDF'));
  if (executable === undefined || report === undefined) throw new Error('demo samples changed');

  await t.test('mail to the server is recovered, inspected and delivered there', async (t) => {
    const sentExecutable = await send(executable.content);
    t.ok(sentExecutable.ok, `smtplib delivered the message with an executable (${sentExecutable.error ?? sentExecutable.response ?? ''})`);
    const logged = JSON.parse(await mailmoat.next((line) => line.includes('"msg":"transaction"'))) as Record<string, unknown>;
    t.equal(logged.upstream, `${server.address}:25`, 'the transaction went to the original destination');
    t.equal(logged.direction, 'inbound', 'from outside networks.internal: inbound');
    t.equal(logged.verdict, 'rewrite', 'inspected and rewritten');
    const sentReport = await send(report.content);
    t.ok(sentReport.ok, 'smtplib delivered the clean message');

    const received = await dumps(sinkDir, 2);
    t.equal(received.length, 2, 'smtp-sink in the server namespace received both');
    const stripped = received.find((message) => message.body.includes('Subject: Your invoice'));
    t.ok(stripped, 'the invoice arrived');
    t.notMatch(stripped?.body ?? '', /TVqA|TVoA|TVpQ|TVo/, 'without the program (no MZ in base64)');
    t.match(stripped?.body ?? '', /invoice\.pdf\.exe/, 'with a notice naming the removed file');
    const clean = received.find((message) => message.body.includes('Subject: Quarterly report'));
    t.equal(clean?.body, `${asDumped(report.content)}\n`, 'the clean message arrived byte for byte (smtp-sink adds one LF)');
  });

  await t.test('an original destination that is mailmoat itself: 421 4.4.6 and a log line, no loop', async (t) => {
    const { stdout } = await topology.exec(client, process.execPath, ['--input-type=module', '-e', FIRST_LINE_SCRIPT, gateway.serverSide.address, String(MAILMOAT_PORT)]);
    t.match(stdout, /^421 4\.4\.6 /, `the client is refused with 421 4.4.6 (${stdout.trim()})`);
    const logged = JSON.parse(await mailmoat.next((line) => line.includes('no usable original destination'))) as Record<string, unknown>;
    t.equal(logged.reason, 'loop', "logged with reason 'loop'");
    t.equal(logged.destination, `${gateway.serverSide.address}:${MAILMOAT_PORT}`, 'and the destination');
  });

  await t.test('a connection made straight to mailmoat: 421 4.4.0 (not redirected), never relayed to itself', async (t) => {
    const { stdout } = await topology.exec(client, process.execPath, ['--input-type=module', '-e', FIRST_LINE_SCRIPT, gateway.clientSide.address, String(MAILMOAT_PORT)]);
    t.match(stdout, /^421 4\.4\.0 /, `the client is refused with 421 4.4.0 (${stdout.trim()})`);
    const logged = JSON.parse(await mailmoat.next((line) => line.includes('no usable original destination'))) as Record<string, unknown>;
    t.equal(logged.reason, 'not-redirected', "logged with reason 'not-redirected'");
  });

  t.equal((await readdir(sinkDir)).length, 2, 'nothing else reached the server');
});
