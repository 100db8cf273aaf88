// The sidecar container image, built and run for real (issue 20): buildah builds the Dockerfile on
// a local Debian + Node 24 base (once per CI run: the second pass reuses it), the image stays
// within its size budget and carries only what runs, its HEALTHCHECK survives, and the image,
// run as its non-root user with the sidecar policy and `clamd: managed`, waits for signatures
// (not ready, port closed), then relays a clean message unchanged and strips an executable and
// EICAR on the way to a real smtp-sink, answers /healthz, and drains and exits 0 on SIGTERM.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { POSTFIX_REPOSITORY, buildImage, inspectImage, runInContainer, signal, workingContainer, type BuiltImage } from '../helpers/container.js';
import { SmtpSink, asDumped, freePort } from '../helpers/smtp-sink.js';
import { RawClient } from '../helpers/client.js';
import { EICAR } from '../helpers/clamd.js';
import { eicarSignature } from '../../src/demo/samples.js';

const run = promisify(execFile);
/** A build from scratch on this 2-core machine takes a few minutes (the base, two apt installs, npm ci). */
const BUILD_BUDGET_MS = 20 * 60_000;
/** The whole image, base included: the local base is ~290 MB (Debian minbase, Node 24 with headers, npm). */
const IMAGE_BUDGET_BYTES = 450 * 1000 * 1000;
/** What mailmoat adds over its base: clamd and freshclam with their libraries, production node_modules, dist/src. */
const ADDED_BUDGET_BYTES = 130 * 1000 * 1000;
/** The image's own user (node:24-slim's `node`). */
const NODE_UID = 1000;
/** deploy/postfix's owner of the Maildirs. */
const VMAIL_UID = 5000;

t.setTimeout(BUILD_BUDGET_MS);

const crlf = (lines: string[]): string => `${lines.join('\r\n')}\r\n`;
const attachment = (subject: string, name: string, type: string, body: Buffer): string =>
  crlf([
    'From: alice@example.org',
    'To: bob@example.net',
    `Subject: ${subject}`,
    `Message-ID: <${subject}@example.org>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="sep"',
    '',
    '--sep',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `The ${subject} message.`,
    '--sep',
    `Content-Type: ${type}; name="${name}"`,
    `Content-Disposition: attachment; filename="${name}"`,
    'Content-Transfer-Encoding: base64',
    '',
    body.toString('base64'),
    '--sep--',
  ]);
const MESSAGES = {
  clean: crlf(['From: alice@example.org', 'To: bob@example.net', 'Subject: clean', 'Message-ID: <clean@example.org>', '', 'A clean message, relayed byte for byte.']),
  executable: attachment('executable', 'setup.exe', 'application/octet-stream', Buffer.concat([Buffer.from('MZ'), Buffer.alloc(126, 0x90)])),
  eicar: attachment('eicar', 'readme.txt', 'text/plain', Buffer.from(EICAR)),
};

/** GET /healthz: the status code, or 'refused' when nothing listens. */
function healthz(port: number): Promise<number | 'refused'> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz' }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNREFUSED' ? resolve('refused') : reject(error)));
    req.end();
  });
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

let image: BuiltImage;

t.before(async () => {
  image = await buildImage();
  t.comment(image.buildSeconds === undefined ? `reused ${image.tag}` : `built ${image.tag} in ${image.buildSeconds.toFixed(0)} s`);
});

t.test('the image: within its size budget, only what runs, HEALTHCHECK kept, a non-root user', async (t) => {
  const config = await inspectImage(image.tag);
  const base = await inspectImage(image.base);
  const total = config.layerBytes.reduce((sum, bytes) => sum + bytes, 0);
  const added = config.layerBytes.slice(base.layerBytes.length).reduce((sum, bytes) => sum + bytes, 0);
  t.comment(`image ${(total / 1e6).toFixed(0)} MB, of which ${(added / 1e6).toFixed(0)} MB over the base`);
  t.ok(total <= IMAGE_BUDGET_BYTES, `image ${total} bytes <= budget ${IMAGE_BUDGET_BYTES}`);
  t.ok(added <= ADDED_BUDGET_BYTES, `added over the base ${added} bytes <= budget ${ADDED_BUDGET_BYTES}`);
  t.equal(config.user, 'node', 'runs as node');
  t.match(config.healthcheck?.join(' ') ?? '', /mailmoat health --policy \/etc\/mailmoat\/policy\.yaml/, 'the HEALTHCHECK survived the build (docker format)');
  const container = await workingContainer(t, image.tag);
  const { stdout } = await run('buildah', [
    'run', '--isolation', 'chroot', container, '--', 'sh', '-c',
    'ls /app; ls /app/dist; test -f /app/native/build/Release/original_dst.node && echo addon; test -d /app/node_modules/typescript || test -d /app/node_modules/tap || echo no-dev; mailmoat --version',
  ]);
  t.same(stdout.trim().split('\n'), ['dist', 'native', 'node_modules', 'package.json', 'policies', 'src', 'addon', 'no-dev', JSON.parse(await readFile('package.json', 'utf8')).version], 'dist/src, the addon, production node_modules and the policies; no sources, tests or dev packages');
});

/** policies/sidecar.yaml as shipped but on free ports (the host network is shared), its volumes in a temporary folder. */
async function prepareSidecar(t: Test, upstreamPort: number): Promise<{ smtpPort: number; adminPort: number; signatures: string; mounts: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-container-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const signatures = join(dir, 'signatures');
  const quarantine = join(dir, 'quarantine');
  for (const folder of [signatures, quarantine]) {
    await mkdir(folder);
    await chown(folder, NODE_UID, NODE_UID);
  }
  await chmod(quarantine, 0o700);
  const smtpPort = await freePort();
  const adminPort = await freePort();
  const policy = parse(await readFile('policies/sidecar.yaml', 'utf8')) as { listeners: { listen: string; upstream: string }[]; admin?: { listen: string } };
  t.equal(policy.listeners.length, 1, 'the sidecar policy has one listener');
  const listener = policy.listeners[0];
  if (listener === undefined) throw new Error('policies/sidecar.yaml has no listener');
  listener.listen = `127.0.0.1:${smtpPort}`;
  listener.upstream = `127.0.0.1:${upstreamPort}`;
  policy.admin = { listen: `127.0.0.1:${adminPort}` };
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, stringify(policy));
  await chmod(policyFile, 0o644);
  return { smtpPort, adminPort, signatures, mounts: [`${signatures}:/var/lib/clamav`, `${quarantine}:/var/lib/mailmoat/quarantine`, `${policyFile}:/etc/mailmoat/policy.yaml:ro`] };
}

t.test('the sidecar policy in the image: waits for signatures, relays and strips through a real smtp-sink, drains on SIGTERM', async (t) => {
  const sink = await SmtpSink.start(t);
  const { smtpPort, adminPort, signatures, mounts } = await prepareSidecar(t, sink.port);
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-messages-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = await inspectImage(image.tag);
  const container = await workingContainer(t, image.tag);
  const mailmoat = runInContainer(t, container, config.user, mounts, [...config.entrypoint, ...config.cmd]);
  const healthcheck = async (): Promise<number> => {
    // mailmoat health reads admin.listen from the mounted policy, as in a real container.
    const probe = runInContainer(t, container, config.user, mounts, (config.healthcheck ?? []).slice(1));
    return (await probe.exited) ?? -1;
  };

  const [waiting] = await mailmoat.logged('clamd waits for signatures');
  t.match(String(waiting?.detail), /\/var\/lib\/clamav holds no signature database yet/, 'it says it waits for the signatures');
  t.equal(await healthz(adminPort), 'refused', '/healthz does not answer while it waits: not ready');
  t.equal(await healthcheck(), 1, "the image's HEALTHCHECK fails while it waits");
  t.ok(await refusesConnections(smtpPort), 'the SMTP port is closed while it waits (senders retry later)');

  await writeFile(join(signatures, 'mailmoat-test.ndb'), eicarSignature('Mailmoat.Test.EICAR'));
  await mailmoat.logged('clamd signatures found');
  const [supervising] = await mailmoat.logged('supervising workers');
  const supervisor = Number(supervising?.pid);
  await mailmoat.logged('worker listening', Number(supervising?.workers));
  t.equal(await healthz(adminPort), 200, '/healthz says ready once clamd answers');
  t.equal(await healthcheck(), 0, "the image's HEALTHCHECK passes");

  for (const [subject, text] of Object.entries(MESSAGES)) {
    const file = join(dir, `${subject}.eml`);
    await writeFile(file, text, 'latin1');
    const { stdout } = await run('swaks', ['--server', `127.0.0.1:${smtpPort}`, '--from', 'alice@example.org', '--to', 'bob@example.net', '--data', file, '--silent', '1']);
    t.notMatch(stdout, /\*\*\*/, `swaks delivered the ${subject} message without error`);
  }
  const received = await sink.messages(3);
  const bySubject = (subject: string): string => received.find((message) => message.body.includes(`Subject: ${subject}\n`))?.body ?? '';
  t.equal(bySubject('clean').replace(/\n+$/, ''), asDumped(MESSAGES.clean).replace(/\n+$/, ''), 'the clean message arrived byte for byte');
  t.match(bySubject('executable'), /removed the attachment "setup\.exe"/, 'the executable was replaced by the notice');
  t.notMatch(bySubject('executable'), /TVqQ/, 'no byte of the executable reached the upstream');
  t.match(bySubject('eicar'), /removed the attachment "readme\.txt"/, 'EICAR was replaced by the notice');
  t.notMatch(bySubject('eicar'), new RegExp(Buffer.from(EICAR).toString('base64').slice(0, 24)), 'no byte of EICAR reached the upstream');
  const transactions = await mailmoat.logged('transaction', 3);
  t.same(transactions.map((line) => line.verdict), ['pass', 'rewrite', 'rewrite'], 'verdicts in the log, in the order sent');

  // SIGTERM as `docker stop` sends it: a session that is open finishes, then mailmoat exits 0.
  const session = await RawClient.openTransaction(smtpPort);
  t.same(session.codes(), [220, 250, 250, 250, 354], 'a session is in DATA when SIGTERM arrives');
  signal(supervisor, 'SIGTERM');
  await mailmoat.logged('draining every worker');
  session.send(crlf(['Subject: during the drain', '', 'finished after SIGTERM', '.']));
  const replies = await session.waitForReplies(7);
  t.same(replies.slice(5).map((reply) => reply.code), [250, 421], 'the open transaction completes during the drain, then the session is closed with 421');
  t.ok(await session.waitForClose(), 'mailmoat closed the session');
  session.close();
  t.equal(await mailmoat.exited, 0, 'mailmoat drained and exited 0');
  t.ok(await refusesConnections(smtpPort), 'nothing listens after the exit');
  t.equal((await sink.messages(4)).length, 4, 'the message sent during the drain reached the upstream');
});

t.test("the compose example's upstream for real: deploy/postfix's image behind the mailmoat image takes mail for its domain and relays nothing", async (t) => {
  const postfix = await buildImage(POSTFIX_REPOSITORY, 'deploy/postfix');
  t.comment(postfix.buildSeconds === undefined ? `reused ${postfix.tag}` : `built ${postfix.tag} in ${postfix.buildSeconds.toFixed(0)} s`);
  const postfixConfig = await inspectImage(postfix.tag);
  const postfixContainer = await workingContainer(t, postfix.tag);
  const mailbox = await mkdtemp(join(tmpdir(), 'mailmoat-maildir-'));
  t.teardown(() => rm(mailbox, { recursive: true, force: true }));
  await chown(mailbox, VMAIL_UID, VMAIL_UID);
  // Port 25 of its own namespace in the compose file; here the host's network is shared, so a free port.
  const postfixPort = await freePort();
  await run('buildah', ['config', '--env', 'MAIL_HOSTNAME=mx.example.com', '--env', 'MAIL_ACCOUNTS=bob@example.com', postfixContainer]);
  const server = runInContainer(t, postfixContainer, 'root', [`${mailbox}:/var/mail/vhosts`], [
    'sh', '-c', `postconf -M 'smtp/inet=127.0.0.1:${postfixPort} inet n - n - - smtpd' && exec ${postfixConfig.entrypoint.join(' ')}`,
  ]);
  // Postfix's master leaves the process group (setsid): stopped by its own pid.
  const master = Number((await server.printed(/postfix\/master\[(\d+)\]: daemon started/))[1]);
  t.teardown(() => signal(master, 'SIGKILL'));

  const { smtpPort, signatures, mounts } = await prepareSidecar(t, postfixPort);
  await writeFile(join(signatures, 'mailmoat-test.ndb'), eicarSignature('Mailmoat.Test.EICAR'));
  const config = await inspectImage(image.tag);
  const container = await workingContainer(t, image.tag);
  const mailmoat = runInContainer(t, container, config.user, mounts, [...config.entrypoint, ...config.cmd]);
  const [supervising] = await mailmoat.logged('supervising workers');
  await mailmoat.logged('worker listening', Number(supervising?.workers));

  const messages = await mkdtemp(join(tmpdir(), 'mailmoat-messages-'));
  t.teardown(() => rm(messages, { recursive: true, force: true }));
  const file = join(messages, 'eicar.eml');
  await writeFile(file, MESSAGES.eicar.replace('To: bob@example.net', 'To: bob@example.com'), 'latin1');
  const delivered = await run('swaks', ['--server', `127.0.0.1:${smtpPort}`, '--from', 'alice@example.org', '--to', 'bob@example.com', '--data', file]);
  t.match(delivered.stdout, /<- {2}250 2\.0\.0 Ok: queued as [0-9A-F]+/, 'Postfix queued the message mailmoat relayed');
  const [, queueId] = (await server.printed(/postfix\/virtual\[\d+\]: ([0-9A-F]+): to=<bob@example\.com>.* status=sent \(delivered to maildir\)/)) ?? [];
  t.ok(queueId, 'and delivered it to the Maildir');
  const [stored] = await readdir(join(mailbox, 'example.com', 'bob', 'new'));
  const text = await readFile(join(mailbox, 'example.com', 'bob', 'new', stored ?? ''), 'latin1');
  t.match(text, /removed the attachment "readme\.txt"/, 'the stored message carries the notice, not EICAR');
  const relay = await run('swaks', ['--server', `127.0.0.1:${smtpPort}`, '--from', 'alice@example.org', '--to', 'carol@elsewhere.example', '--quit-after', 'RCPT']).catch((error: { stdout: string }) => error);
  t.match(relay.stdout, /<\*\* 554 5\.7\.1 <carol@elsewhere\.example>: Relay access denied/, "another domain: Postfix's refusal, relayed by mailmoat (every session comes from 127.0.0.1, yet no relay)");
  const unknown = await run('swaks', ['--server', `127.0.0.1:${smtpPort}`, '--from', 'alice@example.org', '--to', 'nobody@example.com', '--quit-after', 'RCPT']).catch((error: { stdout: string }) => error);
  t.match(unknown.stdout, /<\*\* 550 5\.1\.1 <nobody@example\.com>/, 'an unknown mailbox is refused at RCPT, not accepted and bounced');

  signal(Number(supervising?.pid), 'SIGTERM');
  t.equal(await mailmoat.exited, 0, 'mailmoat drained and exited 0');
});
