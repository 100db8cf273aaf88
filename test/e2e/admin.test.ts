// The admin listener of a running `mailmoat start` with two workers: Prometheus metrics
// scraped over HTTP move with the mail, /healthz, the status API, and the status page
// rendered by a real headless Chromium (Debian's chromium): its DOM after the script ran,
// and a screenshot (saved to docs/status-page.png when MAILMOAT_SCREENSHOT=1).
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoSamples } from '../../src/demo/samples.js';
import { RawClient } from '../helpers/client.js';
import { startMailmoat } from '../helpers/mailmoat-process.js';
import { SmtpSink, freePort } from '../helpers/smtp-sink.js';

const CHROMIUM = '/usr/bin/chromium';
const executable = demoSamples().find((sample) => sample.title.startsWith('invoice.pdf.exe'));
const plain = demoSamples()[0];
if (executable === undefined || plain === undefined) throw new Error('no samples');

async function send(port: number, wire: Buffer): Promise<void> {
  const client = await RawClient.greeted(port);
  client.send('EHLO admin.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  await client.waitForReplies(5);
  client.send(Buffer.concat([wire, Buffer.from('QUIT\r\n')]));
  await client.waitForClose();
}

const metricValue = (text: string, name: string, labels: string): number => {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name}{`) && entry.includes(labels));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
};

function chromium(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

t.test('metrics move with the mail; health; the status page renders in Chromium', async (t) => {
  const sink = await SmtpSink.start(t);
  const adminPort = await freePort();
  const mailmoat = await startMailmoat(t, sink.port, `workers: 2\nadmin:\n  listen: 127.0.0.1:${adminPort}\n`);
  const base = `http://127.0.0.1:${adminPort}`;
  await mailmoat.logged('admin listener: /metrics, /healthz, status page on /');

  await send(mailmoat.port, plain.wire);
  await send(mailmoat.port, executable.wire);
  let metrics = await (await fetch(`${base}/metrics`)).text();
  t.equal(metricValue(metrics, 'mailmoat_messages_total', 'verdict="pass"'), 1, 'one pass');
  t.equal(metricValue(metrics, 'mailmoat_messages_total', 'verdict="rewrite"'), 1, 'one rewrite');
  t.equal(metricValue(metrics, 'mailmoat_findings_total', 'kind="executable"'), 1, 'one executable finding');
  t.equal(metricValue(metrics, 'mailmoat_sessions_total', 'protocol="smtp"'), 2, 'two sessions (over both workers)');
  // Both messages are in the histogram; which bucket depends on the machine's load, so only +Inf and the count are asserted.
  t.match(metrics, /mailmoat_message_duration_seconds_bucket\{le="\+Inf",protocol="smtp"\} 2\n/, 'the latency histogram holds both messages');
  t.match(metrics, /mailmoat_message_duration_seconds_count\{protocol="smtp"\} 2\n/);
  await send(mailmoat.port, executable.wire);
  metrics = await (await fetch(`${base}/metrics`)).text();
  t.equal(metricValue(metrics, 'mailmoat_messages_total', 'verdict="rewrite"'), 2, 'the counter moved');

  const health = await fetch(`${base}/healthz`);
  t.equal(health.status, 200);
  t.match(await health.json(), { ok: true });
  const status = (await (await fetch(`${base}/api/status`)).json()) as { recent: { verdict: string }[]; perMinute: unknown[] };
  t.same(status.recent.map((entry) => entry.verdict), ['rewrite', 'rewrite', 'pass'], 'recent verdicts, newest first');
  t.equal(status.perMinute.length, 60);
  t.equal((await fetch(`${base}/nope`)).status, 404);
  t.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
  t.match((await fetch(`${base}/`)).headers.get('content-security-policy'), /default-src 'self'/);

  if (!existsSync(CHROMIUM)) throw new Error('chromium is not installed: apt-get install chromium (bash scripts/setup.sh test does)');
  const dom = await chromium(['--virtual-time-budget=5000', '--dump-dom', `${base}/`]);
  t.match(dom, /data-loaded="true"/, 'the script ran and loaded the status');
  t.match(dom, /<b id="sessions-smtp">3<\/b>/, 'live counters');
  t.match(dom, /<td class="verdict"[^>]*>rewrite<\/td>/, 'the recent verdicts table');
  t.ok((dom.match(/<rect /g) ?? []).length >= 1, 'the chart has bars');
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-shot-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const shot = join(dir, 'status.png');
  await chromium(['--virtual-time-budget=5000', '--window-size=1200,900', `--screenshot=${shot}`, `${base}/`]);
  const png = await readFile(shot);
  t.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) && png.length > 20_000, `a real screenshot (${png.length} bytes)`);
  if (process.env.MAILMOAT_SCREENSHOT === '1') await copyFile(shot, 'docs/status-page.png');
  mailmoat.child.kill('SIGTERM');
  t.equal(await mailmoat.exited, 0);
});
