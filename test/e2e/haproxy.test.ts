// PROXY protocol from a real load balancer: Debian's HAProxy (started by the test, `mode tcp`,
// one frontend with `send-proxy` and one with `send-proxy-v2`) in front of a mailmoat listener
// with `proxy_protocol: true`, relaying to a real smtp-sink. Python's smtplib connects to
// HAProxy from two loopback addresses: 127.0.0.5, listed in networks.internal, and 127.0.0.9,
// outside it. Every connection mailmoat accepts comes from HAProxy, yet the internal client's
// mail is relayed untouched and the external client's executable is stripped.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parsePolicyText } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { demoSamples, windowsProgramStub } from '../../src/demo/samples.js';
import { SmtpSink, asDumped, freePort } from '../helpers/smtp-sink.js';
import { startListener } from '../helpers/proxy.js';
import { smtplibSend } from '../helpers/smtplib.js';

const HAPROXY = '/usr/sbin/haproxy';
const INTERNAL = '127.0.0.5';
const EXTERNAL = '127.0.0.9';
/** The readiness probes' address: HAProxy passes their connections on too. */
const PROBE = '127.0.0.3';

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: PROBE });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

t.test('HAProxy send-proxy and send-proxy-v2 in front of mailmoat: the real client decides direction', async (t) => {
  t.ok(existsSync(HAPROXY), `HAProxy is installed (${HAPROXY}; bash scripts/setup.sh test installs it)`);
  if (!existsSync(HAPROXY)) return;

  const sink = await SmtpSink.start(t);
  const inspector = await createMailInspector(parsePolicyText('', 'test'));
  const proxy = await startListener(t, 'smtp', `127.0.0.1:${sink.port}`, { networks: { internal: [`${INTERNAL}/32`] } }, inspector, { proxy_protocol: true });

  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-haproxy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const v1Port = await freePort();
  const v2Port = await freePort();
  const config = [
    'global',
    '  maxconn 100',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 30s',
    '  timeout server 30s',
    `frontend smtp_v1`,
    `  bind 127.0.0.1:${v1Port}`,
    '  default_backend mailmoat_v1',
    `frontend smtp_v2`,
    `  bind 127.0.0.1:${v2Port}`,
    '  default_backend mailmoat_v2',
    'backend mailmoat_v1',
    `  server m 127.0.0.1:${proxy.port} send-proxy`,
    'backend mailmoat_v2',
    `  server m 127.0.0.1:${proxy.port} send-proxy-v2`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'haproxy.cfg'), config);
  const haproxy = spawn(HAPROXY, ['-f', join(dir, 'haproxy.cfg'), '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  haproxy.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.teardown(() => {
    haproxy.kill('SIGKILL');
  });
  for (let waited = 0; !((await listening(v1Port)) && (await listening(v2Port))); waited += 50) {
    if (haproxy.exitCode !== null || waited > 10_000) throw new Error(`haproxy did not start: ${stderr}`);
    await sleep(50);
  }

  const sample = demoSamples().find((entry) => entry.title.startsWith('invoice.pdf.exe'));
  if (sample === undefined) throw new Error('demo samples changed');
  const program = windowsProgramStub().toString('base64').slice(0, 40);

  for (const [version, port] of [['v1', v1Port], ['v2', v2Port]] as const) {
    const before = proxy.transactions.length;
    const external = await smtplibSend({ port, mode: 'plain', sourceAddress: EXTERNAL }, sample.content);
    t.ok(external.ok, `${version}: the external client's message was accepted (${external.error ?? ''})`);
    const internal = await smtplibSend({ port, mode: 'plain', sourceAddress: INTERNAL }, sample.content);
    t.ok(internal.ok, `${version}: the internal client's message was accepted (${internal.error ?? ''})`);
    const [fromExternal, fromInternal] = proxy.transactions.slice(before);
    t.match(fromExternal, { downstream: new RegExp(`^${EXTERNAL.replace(/\./g, '\\.')}:`), direction: 'inbound', inspected: true, verdict: 'rewrite' }, `${version}: ${EXTERNAL} is inbound and inspected`);
    t.match(fromInternal, { downstream: new RegExp(`^${INTERNAL.replace(/\./g, '\\.')}:`), direction: 'outbound', inspected: false, verdict: 'pass' }, `${version}: ${INTERNAL} is outbound and relayed`);
  }

  const received = await sink.messages(4);
  t.equal(received.length, 4, 'smtp-sink received all four');
  t.equal(received.filter((message) => !message.body.includes(program) && message.body.includes('invoice.pdf.exe')).length, 2, 'the two external copies arrived without the program');
  t.equal(received.filter((message) => message.body === `${asDumped(sample.content)}\n`).length, 2, 'the two internal copies arrived byte for byte');
  const downstreams = new Set(proxy.logs.flatMap((line) => (typeof line.downstream === 'string' ? [line.downstream.replace(/:\d+$/, '')] : [])));
  t.same([...downstreams].sort(), [PROBE, INTERNAL, EXTERNAL].sort(), "the logs name the clients (and the probes), never HAProxy's own 127.0.0.1");
});
