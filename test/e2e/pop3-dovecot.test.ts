// The POP3 proxy in front of a real Dovecot, driven by real clients (Python poplib)
// and by raw transcripts where the exact wire bytes matter (RFC 1939, 2449, 5034).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { validatePolicy } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { demoSamples } from '../../src/demo/samples.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { startTestPop3Proxy } from '../helpers/proxy.js';
import { poplibSession } from '../helpers/poplib.js';
import { RawPop3 } from '../helpers/pop3-raw.js';
import { corpusFile } from '../helpers/corpora.js';

const samples = demoSamples();
const sample = (title: string): Buffer => {
  const found = samples.find((candidate) => candidate.title.startsWith(title));
  if (found === undefined) throw new Error(`no sample ${title}`);
  return found.content;
};
// 1 plain, 2 dots, 3 executable, 4 zip holding an exe, 5 a corpus message with attachments (clean), 6 PDF report.
const MAILBOX = [
  sample('plain text note'),
  sample('lines starting with dots'),
  sample('invoice.pdf.exe'),
  sample('parcel.zip'),
  readFileSync(corpusFile('mailsplit/test/fixtures/message.eml')),
  sample('report with a PDF attachment'),
];
const CLEAN = [1, 2, 5, 6];
const STRIPPED = [3, 4];

const inspector = await createMailInspector(validatePolicy({}, 'test'));
t.teardown(() => inspector.close());

t.test('clean messages arrive byte for byte as Dovecot sends them; executables are stripped with a matching octet count', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: MAILBOX }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const direct = await RawPop3.connect(dovecot.port);
  const proxied = await RawPop3.connect(proxy.port);
  t.teardown(() => (direct.close(), proxied.close()));
  await direct.login('alice', 'secret');
  await proxied.login('alice', 'secret');
  t.equal(await proxied.command('STAT'), await direct.command('STAT'), 'STAT is relayed');
  for (const verb of ['LIST', 'UIDL']) {
    direct.send(`${verb}\r\n`);
    proxied.send(`${verb}\r\n`);
    t.same(await proxied.multiline(), await direct.multiline(), `${verb} is relayed byte for byte`);
  }
  for (const number of CLEAN) {
    direct.send(`RETR ${number}\r\n`);
    proxied.send(`RETR ${number}\r\n`);
    const expected = await direct.multiline();
    const got = await proxied.multiline();
    t.ok(got.equals(expected), `RETR ${number}: identical wire bytes (${got.length} bytes)`);
  }
  for (const number of STRIPPED) {
    proxied.send(`RETR ${number}\r\n`);
    const wire = await proxied.multiline();
    const text = wire.toString('latin1');
    const status = /^\+OK (\d+) octets\r\n/.exec(text);
    t.ok(status, `RETR ${number}: +OK n octets`);
    const body = text.slice(text.indexOf('\r\n') + 2, -3).replace(/\r\n\.\./g, '\r\n.');
    t.equal(Number(status?.[1]), Buffer.byteLength(body, 'latin1'), `RETR ${number}: the octet count is what is sent`);
    t.match(text, /mailmoat removed the attachment/, `RETR ${number}: the notice replaces the attachment`);
    t.notMatch(text, /TVqQ|TVoA|TVpQ|TVr/, `RETR ${number}: no program bytes left`);
    t.match(text, /X-Mailmoat-Action: stripped 1 part/, `RETR ${number}: marked`);
  }
  t.equal(proxy.retrievals.length, 6);
  t.same(proxy.retrievals.map((summary) => summary.verdict), ['pass', 'pass', 'pass', 'pass', 'rewrite', 'rewrite']);
  t.equal(await proxied.command('QUIT'), await direct.command('QUIT'));
});

t.test('poplib through the proxy: STAT, UIDL, RETR, TOP with 0 and a huge line count', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: MAILBOX }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const steps: Parameters<typeof poplibSession>[1] = [
    ['user', 'alice'],
    ['pass', 'secret'],
    ['stat'],
    ['uidl'],
    ['retr', 1],
    ['top', 1, 0],
    ['top', 5, 0],
    ['top', 5, 100000],
    ['top', 3, 0],
    ['top', 3, 100000],
    ['top', 3, 3],
    ['quit'],
  ];
  const [direct, proxied] = await Promise.all([poplibSession(dovecot.port, steps), poplibSession(proxy.port, steps)]);
  t.equal(proxied.length, steps.length + 1, 'every step answered');
  t.ok(direct.every((result) => result.ok), 'no step failed directly');
  t.ok(proxied.every((result) => result.ok), 'no step failed through the proxy');
  const [, , , stat, uidl, retr, top10, top50, top5huge, top30, top3huge, top33] = proxied;
  t.same(stat, direct[3], 'STAT');
  t.same(uidl?.data, direct[4]?.data, 'UIDL');
  t.same(retr?.data, direct[5]?.data, 'RETR of a clean message');
  t.same(top10?.data, direct[6]?.data, 'TOP 1 0: the headers, unchanged');
  t.same(top50?.data, direct[7]?.data, 'TOP 5 0');
  t.same(top5huge?.data, direct[8]?.data, 'TOP 5 100000: the whole clean message, unchanged');
  t.same(top30?.data, direct[9]?.data, 'TOP 3 0 of the message with an executable: headers only, nothing to strip');
  t.match(top3huge?.data?.toString('latin1'), /mailmoat removed the attachment "invoice\.pdf\.exe"/, 'TOP 3 100000: stripped');
  t.ok(top33?.ok, 'TOP 3 3: a cut message is answered, not refused');
  t.notMatch(top3huge?.data?.toString('latin1'), /TVqQ|TVoA|TVpQ|TVr/, 'no program bytes in TOP');
});

t.test('DELE then QUIT removes the message upstream; DELE without QUIT removes nothing', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: MAILBOX.slice(0, 3) }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const gone = await RawPop3.connect(proxy.port);
  await gone.login('alice', 'secret');
  t.match(await gone.command('DELE 1'), /^\+OK/);
  gone.close();
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(await dovecot.messageCount('alice'), 3, 'a client that vanished without QUIT deleted nothing (RFC 1939 6)');
  const results = await poplibSession(proxy.port, [['user', 'alice'], ['pass', 'secret'], ['dele', 1], ['dele', 2], ['quit']]);
  t.ok(results.every((result) => result.ok), 'DELE and QUIT answered +OK');
  t.equal(await dovecot.messageCount('alice'), 1, 'two messages removed by the upstream on QUIT');
});

t.test('a wrong password gets the upstream\'s own -ERR; AUTH PLAIN is relayed with its continuation', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: MAILBOX.slice(0, 1) }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const [direct, proxied] = await Promise.all(
    [dovecot.port, proxy.port].map((port) => poplibSession(port, [['user', 'alice'], ['pass', 'wrong']])),
  );
  t.equal(proxied?.[2]?.ok, false, 'poplib sees the failure');
  t.equal(proxied?.[2]?.error, direct?.[2]?.error, 'the same -ERR text as directly');
  const raw = await RawPop3.connect(proxy.port);
  t.teardown(() => raw.close());
  t.match(await raw.line(), /^\+OK/);
  t.equal(await raw.command('AUTH PLAIN'), '+ ', 'the continuation is relayed');
  t.match(await raw.command(Buffer.from('\0alice\0secret').toString('base64')), /^\+OK/, 'logged in through SASL');
  t.match(await raw.command('STAT'), /^\+OK 1 /, 'TRANSACTION state after AUTH');
  t.notOk(proxy.rawLogs.some((line) => line.includes('secret') || line.includes(Buffer.from('\0alice\0secret').toString('base64'))), 'no credential in any log line');
});

t.test('CAPA is filtered: PIPELINING and STLS withheld, the rest passes', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [] }]);
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const [direct, proxied] = await Promise.all([dovecot.port, proxy.port].map((port) => poplibSession(port, [['capa']])));
  const directCaps = direct?.[1]?.capabilities ?? [];
  t.ok(directCaps.includes('PIPELINING'), 'Dovecot offers PIPELINING directly');
  t.same(proxied?.[1]?.capabilities, directCaps.filter((name) => name !== 'PIPELINING' && name !== 'STLS'));
});

t.test('USER name#host picks the upstream, only for allowed hosts and ports', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: MAILBOX.slice(0, 2) }]);
  const proxy = await startTestPop3Proxy(t, 'from-username', { pop3: { upstream_hosts: ['127.0.0.1', '*.example.com'], upstream_ports: [dovecot.port] } }, inspector);
  const results = await poplibSession(proxy.port, [['user', `alice#127.0.0.1:${dovecot.port}`], ['pass', 'secret'], ['stat'], ['retr', 2], ['quit']]);
  t.ok(results.every((result) => result.ok), 'logged in upstream as alice');
  t.equal(results[3]?.response, '2 ' + String(MAILBOX.slice(0, 2).reduce((sum, message) => sum + message.length, 0)), 'STAT from that server');
  t.same(results[4]?.data?.toString('latin1').split('\r\n').slice(0, 3), sample('lines starting with dots').toString('latin1').split('\r\n').slice(0, 3));
  const refused = await poplibSession(proxy.port, [['user', `alice#localhost:${dovecot.port}`]]);
  t.match(refused[1]?.error, /\[AUTH\] That server is not reachable through this proxy/, 'a host outside pop3.upstream_hosts');
  const wrongPort = await poplibSession(proxy.port, [['user', 'alice#127.0.0.1:25']]);
  t.match(wrongPort[1]?.error, /not reachable/, 'a port outside pop3.upstream_ports');
  const plain = await poplibSession(proxy.port, [['user', 'alice']]);
  t.match(plain[1]?.error, /USER name#host/, 'a plain user name is told the form');
  t.match(proxy.logs.find((line) => line.msg === 'logged in'), { user: 'alice', upstream: `127.0.0.1:${dovecot.port}` });
});
