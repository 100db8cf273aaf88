// A fleet of three real `mailmoat start` processes on loopback sharing one real
// redis-server (state.backend: redis://), behind a real HAProxy (round robin,
// send-proxy-v2, the configuration README "Fleet" shows), relaying to a real
// smtp-sink. Each node has a PROXY-protocol listener for HAProxy and a plain one
// for the direct connections that pick a node. What is asserted:
// Node B runs two cluster workers, so the supervisor's side (alerts, the admin listener
// serving the quarantine) and the workers' (admission, keys, the index) are both used.
//   - a client over max_connections_per_address_per_minute through the balancer is
//     limited once for the fleet (3 accepted of 9), not once per node (9 of 9);
//   - an oversized message cut off on node A is refused on node B (552 5.3.4);
//   - one alert per event: three executables on three nodes make one notice that
//     lists each of them once;
//   - a message quarantined on node B is listed, shown and released from node A,
//     and delivered once (a second release from node C is refused);
//   - redis-server killed in the middle of a run: every message got 250 and
//     arrived, or got a 4xx; none is lost; the nodes log the fallback, report it
//     in mailmoat_state_backend_up, and reconnect when Redis is back.
// Every wait is for a log line, a reply or a process exit; none is a sleep.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import libqp from 'libqp';
import { demoSamples, windowsProgramStub } from '../../src/demo/samples.js';
import { SmtpSink, freePort, type SinkMessage } from '../helpers/smtp-sink.js';
import { startMailmoat, type Running } from '../helpers/mailmoat-process.js';
import { RawClient } from '../helpers/client.js';
import { REDIS_SERVER, startRedis } from '../helpers/redis.js';
import { HAPROXY, startHaproxy } from '../helpers/haproxy.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
const RATE_PER_MINUTE = 3;
/** Node B runs two cluster workers (each with its own connections to Redis); A and C one process each. */
const WORKERS = [1, 2, 1];
const RATE_ATTEMPTS = 9;
const ABORT_OVER_BYTES = 20_000;
const UP = 'state backend up: limits, keys, alerts and the quarantine index are shared';
const DOWN = 'state backend down: per-node fallback until it answers again';

const executable = demoSamples().find((sample) => sample.title.startsWith('invoice.pdf.exe'));
if (executable === undefined) throw new Error('no executable sample');
const program = windowsProgramStub().toString('base64').slice(0, 40);
const big = `Subject: big\r\n\r\n${'x'.repeat(76).concat('\r\n').repeat(700)}`;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }));
  });
}

/** Greeting, EHLO, MAIL (with SIZE=), RCPT, DATA; the body when DATA was accepted (unless `hold`: the caller sends it). */
async function offer(port: number, sender: string, body: string, localAddress?: string, hold = false): Promise<RawClient> {
  const client = await RawClient.connect(port, localAddress);
  const [greeting] = await client.waitForReplies(1);
  if (greeting?.code !== 220) return client;
  client.send(`EHLO fleet.example\r\nMAIL FROM:<${sender}> SIZE=${body.length}\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n`);
  const replies = await client.waitForReplies(5);
  if (replies[4]?.code === 354 && !hold) client.send(`${body}.\r\n`);
  return client;
}

async function sendExecutable(port: number): Promise<number | undefined> {
  const client = await RawClient.greeted(port);
  client.send('EHLO fleet.example\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  client.send(executable?.wire ?? '');
  const replies = await client.waitForReplies(6);
  client.send('QUIT\r\n');
  await client.waitForClose();
  return replies[5]?.code;
}

const noticeText = (message: SinkMessage): string => {
  const split = message.body.indexOf('\n\n');
  return `${message.body.slice(0, split)}\n\n${libqp.decode(message.body.slice(split + 2).replace(/\n/g, '\r\n')).toString('utf8')}`;
};

t.test('three nodes, one Redis, HAProxy in front: limits, Large Message Safety, alerts and the quarantine are the fleet\'s', async (t) => {
  t.ok(existsSync(REDIS_SERVER), `redis-server is installed (${REDIS_SERVER}; bash scripts/setup.sh test installs it)`);
  t.ok(existsSync(HAPROXY), `HAProxy is installed (${HAPROXY})`);
  if (!existsSync(REDIS_SERVER) || !existsSync(HAPROXY)) return;

  const sink = await SmtpSink.start(t);
  const redis = await startRedis(t);
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-fleet-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'admin-token');
  await writeFile(tokenFile, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });

  const names = ['node-a', 'node-b', 'node-c'];
  const proxyPorts = await Promise.all(names.map(() => freePort()));
  const adminPorts = await Promise.all(names.map(() => freePort()));
  const policy = (index: number): string =>
    [
      `workers: ${WORKERS[index]}`,
      'state:',
      `  backend: ${redis.url}`,
      `  node_id: ${names[index]}`,
      `  admin_token_file: ${tokenFile}`,
      'admin:',
      `  listen: 127.0.0.1:${adminPorts[index]}`,
      'limits:',
      `  max_connections_per_address_per_minute: ${RATE_PER_MINUTE}`,
      '  exempt: [127.0.0.1/32]',
      '  large_message:',
      `    abort_over: ${ABORT_OVER_BYTES}`,
      '    remember_for: 1h',
      '    state_file: ./large-messages.json',
      'alerts:',
      '  to: [admin@example.net]',
      '  from: mailmoat@example.net',
      '  batch_seconds: 3600',
      '',
    ].join('\n');
  const proxyListener = (index: number): string => `  - protocol: smtp\n    listen: 127.0.0.1:${proxyPorts[index]}\n    upstream: 127.0.0.1:${sink.port}\n    proxy_protocol: true\n`;
  const nodes: Running[] = await Promise.all(names.map((_, index) => startMailmoat(t, sink.port, policy(index), proxyListener(index))));
  const [a, b, c] = nodes as [Running, Running, Running];
  await Promise.all(nodes.map((node) => node.logged(UP)));
  const haproxy = await startHaproxy(t, proxyPorts);

  t.test('a client over the per-minute rate through the balancer is limited once for the fleet', async (t) => {
    const greetings: number[] = [];
    for (let attempt = 0; attempt < RATE_ATTEMPTS; attempt++) {
      const client = await RawClient.connect(haproxy.port, '127.0.0.7');
      const [greeting] = await client.waitForReplies(1);
      greetings.push(greeting?.code ?? 0);
      if (greeting?.code === 220) client.send('QUIT\r\n');
      await client.waitForClose();
      client.close();
    }
    t.comment(`greetings through HAProxy from 127.0.0.7: ${greetings.join(' ')}`);
    t.equal(greetings.filter((code) => code === 220).length, RATE_PER_MINUTE, `${RATE_PER_MINUTE} sessions accepted across the three nodes`);
    t.equal(greetings.filter((code) => code === 421).length, RATE_ATTEMPTS - RATE_PER_MINUTE, 'the others told to come back later (421)');
    // Round robin gave each node 3 of the 9 attempts: each refused 2 (its log lines may follow its 421s: wait for them).
    const refusals = await Promise.all(nodes.map((node) => node.loggedTimes('connection refused by a limit', (RATE_ATTEMPTS - RATE_PER_MINUTE) / nodes.length)));
    t.ok(refusals.flat().every((line) => line.limit === 'max_connections_per_address_per_minute'), 'each node refused 2, by the shared per-minute rate');
  });

  t.test('an oversized message cut off on node A is refused on node B', async (t) => {
    // Every serving process of node B learns the key (a connection may land on any of its workers).
    const learnedOnB = b.loggedTimes('large message key learned from the fleet', WORKERS[1] ?? 1);
    const cut = await offer(a.port, 'big@example.org', big);
    t.ok(await cut.waitForClose(), 'node A cuts the connection');
    t.same(cut.codes(), [220, 250, 250, 250, 354], 'no final reply on node A');
    await learnedOnB;
    const again = await offer(b.port, 'big@example.org', big);
    t.same(again.replies[4], { code: 552, lines: ['5.3.4 Message size exceeds fixed limit; this message was cut off before and is not accepted again'] }, 'node B refuses it at DATA');
    again.close();
  });

  t.test('a message quarantined on node B is listed, shown and released from node A, once; one alert for the three events', async (t) => {
    for (const node of nodes) t.equal(await sendExecutable(node.port), 250, `the executable is stripped and delivered by ${names[nodes.indexOf(node)]}`);
    const listed = await cli(['quarantine', 'list', '--policy', a.policy, '--json']);
    t.equal(listed.code, 0, `quarantine list on node A (${listed.stderr.trim()})`);
    const entries = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; node: string; findings: { filename: string }[] });
    t.same(entries.map((entry) => entry.node).sort(), names, 'node A lists one entry from each node');
    const onB = entries.find((entry) => entry.node === 'node-b');
    if (onB === undefined) throw new Error('no entry of node B');

    const original = `http://127.0.0.1:${adminPorts[1]}/quarantine/${onB.id}/original`;
    t.equal((await fetch(original)).status, 401, "node B's admin listener does not serve an original without the fleet's token");
    t.equal((await fetch(original, { headers: { authorization: 'Bearer not-the-fleet-token-0123' } })).status, 401, 'nor with another token');
    const shown = await cli(['quarantine', 'show', onB.id, '--policy', a.policy]);
    t.equal(shown.code, 0, `quarantine show on node A (${shown.stderr.trim()})`);
    t.match(shown.stdout, /"node": "node-b"/, 'the record names its node');
    t.match(shown.stdout, /^Subject: /m, "the original's header, fetched from node B's admin listener");

    const released = await cli(['quarantine', 'release', onB.id, '--policy', a.policy]);
    t.equal(released.code, 0, `quarantine release on node A (${released.stderr.trim()})`);
    t.match(released.stdout, new RegExp(`^released ${onB.id} \\(held on node-b\\) to bob@example\\.net via 127\\.0\\.0\\.1:${sink.port}: 250`, 'm'));
    const twice = await cli(['quarantine', 'release', onB.id, '--policy', c.policy]);
    t.equal(twice.code, 1, 'a second release from node C is refused');
    t.match(twice.stderr, /was released already \(node-a /);

    // Three rewritten copies and the released original.
    const delivered = await sink.messages(4);
    const originals = delivered.filter((message) => message.body.includes(program));
    t.equal(originals.length, 1, 'the original with its program arrived once');

    // Node C drains (SIGTERM): its flush takes the fleet's batch, every node's events.
    const from = c.lines();
    c.child.kill('SIGTERM');
    await c.logged('alert sent', from);
    t.equal(await c.exited, 0, 'node C stopped');
    const all = await sink.messages(5);
    const notices = all.filter((message) => message.rcptArgs.some((args) => args.includes('admin@example.net')));
    t.equal(notices.length, 1, 'one notice for the fleet');
    const text = notices[0] === undefined ? '' : noticeText(notices[0]);
    t.match(text, /^Subject: mailmoat: 3 messages with executables$/m, 'listing three messages');
    for (const entry of entries) t.equal(text.split(entry.id).length - 1, 1, `event ${entry.id} (${entry.node}) in it once`);
    t.equal(a.log().filter((line) => line.msg === 'alert sent').length + b.log().filter((line) => line.msg === 'alert sent').length, 0, 'nodes A and B sent none');
  });

  t.test('redis-server killed in the middle of a run: no message is lost', async (t) => {
    const before = (await sink.messages(0, 0)).length;
    const fromA = a.lines();
    const fromB = b.lines();
    const outcomes: { subject: string; code: number }[] = [];
    const body = (index: number): string => `Subject: fleet-${index}\r\nMessage-ID: <fleet-${index}@example.org>\r\n\r\nmessage ${index}\r\n`;
    const finish = async (client: RawClient, subject: string): Promise<void> => {
      const replies = await client.waitForReplies(6);
      const last = replies[replies.length - 1];
      outcomes.push({ subject, code: last?.code ?? 0 });
      client.close();
    };
    const MESSAGES = 10;
    const KILL_DURING = 3;
    for (let index = 0; index < MESSAGES; index++) {
      const node = index % 2 === 0 ? a : b;
      const client = await offer(node.port, `sender${index}@example.org`, body(index), `127.0.0.${20 + index}`, index === KILL_DURING);
      if (index === KILL_DURING) {
        // The session is in DATA when Redis dies.
        await redis.kill();
        client.send(`${body(index)}.\r\n`);
      }
      await finish(client, `fleet-${index}`);
    }
    await Promise.all([a.logged(DOWN, fromA), b.logged(DOWN, fromB)]);
    const metricsDown = await (await fetch(`http://127.0.0.1:${adminPorts[0]}/metrics`)).text();
    t.match(metricsDown, /^mailmoat_state_backend_up 0$/m, 'node A reports the fallback in mailmoat_state_backend_up');
    t.comment(`end-of-data replies: ${outcomes.map((outcome) => `${outcome.subject}=${outcome.code}`).join(' ')}`);
    t.equal(outcomes.filter((outcome) => outcome.code !== 250 && (outcome.code < 400 || outcome.code >= 500)).length, 0, 'every message got 250 or a 4xx');
    const accepted = outcomes.filter((outcome) => outcome.code === 250);
    const arrived = await sink.messages(before + accepted.length);
    for (const outcome of accepted) t.equal(arrived.filter((message) => message.body.includes(`Subject: ${outcome.subject}\n`)).length, 1, `${outcome.subject} (250) arrived once`);

    const restartedFrom = a.lines();
    await redis.restart();
    await a.logged(UP, restartedFrom);
    const metricsUp = await (await fetch(`http://127.0.0.1:${adminPorts[0]}/metrics`)).text();
    t.match(metricsUp, /^mailmoat_state_backend_up 1$/m, 'node A reconnected');
  });
});
