// POP3 retrievals with a virus scanner: a real clamd finds EICAR; a scanner that is
// down gives -ERR [SYS/TEMP] and the message stays; a scanner slowed to 90 seconds
// does not make the client time out (the keepalive); a scanner that fails after the
// response was committed cuts the connection, and nothing is deleted.
import t, { type Test } from 'tap';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { validatePolicy } from '../../src/config/load.js';
import { createMailInspector } from '../../src/inspect/create.js';
import { demoSamples, eicarSample } from '../../src/demo/samples.js';
import type { Policy } from '../../src/config/schema.js';
import { startTestDovecot } from '../helpers/dovecot.js';
import { startTestPop3Proxy } from '../helpers/proxy.js';
import { poplibSession } from '../helpers/poplib.js';
import { RawPop3 } from '../helpers/pop3-raw.js';
import { startClamd } from '../helpers/clamd.js';

// One test below waits for a scanner slowed to 90 seconds.
t.setTimeout(400_000);

const plain = demoSamples()[0]?.content ?? Buffer.alloc(0);
const eicar = eicarSample().content;

async function inspectorFor(t: Test, antivirus: Partial<Policy['antivirus']>, pop3: Partial<Policy['pop3']> = {}) {
  const policy = validatePolicy({ antivirus, pop3 }, 'test');
  const inspector = await createMailInspector(policy);
  t.teardown(() => inspector.close());
  return { policy, inspector };
}

/**
 * A clamd that misbehaves on purpose: it reads a zINSTREAM request to its end, then
 * answers the first request after `firstDelayMs` (or dies: closes that stream without an
 * answer and stops listening, so a PING to it is refused) and
 * every later one at once with "stream: OK".
 */
async function slowClamd(t: Test, firstDelayMs: number, firstAnswer: 'ok' | 'close'): Promise<string> {
  let requests = 0;
  const held = new Set<Socket>();
  const server: Server = createServer((socket) => {
    held.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => held.delete(socket));
    let buffered = Buffer.alloc(0);
    let ended = false;
    socket.on('data', (chunk: Buffer) => {
      if (ended) return;
      buffered = Buffer.concat([buffered, chunk]);
      // zINSTREAM\0, then chunks of <4-byte length><data>, ended by a zero length.
      let offset = buffered.indexOf(0) + 1;
      while (offset > 0 && offset + 4 <= buffered.length) {
        const length = buffered.readUInt32BE(offset);
        if (length === 0) {
          ended = true;
          const first = requests++ === 0;
          const answer = (): void => {
            if (first && firstAnswer === 'close') {
              // The scanner dies: this stream is cut and nothing listens any more.
              server.close();
              socket.destroy();
            } else socket.end('stream: OK\0');
          };
          if (first) setTimeout(answer, firstDelayMs).unref();
          else answer();
          return;
        }
        offset += 4 + length;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of held) socket.destroy();
    server.close();
  });
  return `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('a real clamd: EICAR in a downloaded message is stripped, the clean one passes', async (t) => {
  const clamd = await startClamd(t);
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [plain, eicar] }]);
  const { inspector } = await inspectorFor(t, { clamd: `unix:${clamd.socket}` });
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const results = await poplibSession(proxy.port, [['user', 'alice'], ['pass', 'secret'], ['retr', 1], ['retr', 2], ['quit']]);
  t.ok(results.every((result) => result.ok));
  t.same(results[3]?.data, plain, 'the clean message, unchanged');
  const infected = results[4]?.data?.toString('latin1') ?? '';
  t.match(infected, /mailmoat removed the attachment "eicar\.com\.txt"/, 'the notice replaces the attachment');
  t.match(infected, /X-Mailmoat-Finding: part 2: virus: eicar\.com\.txt: infected with\r\n Mailmoat\.Test\.EICAR/, 'the finding names the signature');
  t.notMatch(infected, /EICAR-STANDARD-ANTIVIRUS-TEST-FILE/, 'the virus is gone');
  t.same(proxy.retrievals.map((summary) => summary.verdict), ['pass', 'rewrite']);
});

t.test('scanner down: -ERR [SYS/TEMP] for that RETR, the message stays, the session goes on', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [plain] }]);
  const { inspector } = await inspectorFor(t, { clamd: 'unix:/nonexistent/mailmoat-clamd.sock' });
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const results = await poplibSession(proxy.port, [['user', 'alice'], ['pass', 'secret'], ['retr', 1, 'may-fail'], ['dele', 1, 'may-fail'], ['rset'], ['stat'], ['quit']]);
  t.match(results[3]?.error, /-ERR \[SYS\/TEMP\] mailmoat could not inspect message 1 .*it stays on the server, try again later/);
  t.ok(results[5]?.ok && results[6]?.ok, 'the session continues (RSET, STAT)');
  t.equal(await dovecot.messageCount('alice'), 1, 'the message is still on the server');
  t.match(proxy.retrievals[0], { verdict: 'tempfail', keptAlive: false });
});

t.test('a scanner slowed to 90 seconds: the keepalive keeps poplib (30 s timeout) reading, the message arrives', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [plain] }]);
  const clamd = await slowClamd(t, 90_000, 'ok');
  const { inspector } = await inspectorFor(t, { clamd });
  const proxy = await startTestPop3Proxy(t, dovecot.port, {}, inspector);
  const started = Date.now();
  const results = await poplibSession(proxy.port, [['user', 'alice'], ['pass', 'secret'], ['retr', 1], ['quit']], 30);
  const elapsedMs = Date.now() - started;
  t.ok(results.every((result) => result.ok), 'no timeout, no error');
  t.ok(elapsedMs >= 90_000, `the scan took ${elapsedMs} ms`);
  const text = results[3]?.data?.toString('latin1') ?? '';
  const trace = text.match(/^X-Mailmoat-Scan: still inspecting, \d+ s\r\n/gm) ?? [];
  t.ok(trace.length >= 8, `${trace.length} keepalive lines (one per 10 s)`);
  t.equal(text.slice(trace.join('').length), plain.toString('latin1'), 'after the trace lines, the message byte for byte');
  t.match(proxy.retrievals[0], { verdict: 'pass', keptAlive: true });
  t.comment(`slow scanner: RETR answered after ${elapsedMs} ms, poplib read timeout 30 s, ${trace.length} keepalive lines`);
});

t.test('a scanner that fails after the response was committed: the connection is cut, nothing is lost', async (t) => {
  const dovecot = await startTestDovecot(t, [{ name: 'alice', password: 'secret', messages: [plain] }]);
  const clamd = await slowClamd(t, 2500, 'close');
  const { inspector } = await inspectorFor(t, { clamd });
  const proxy = await startTestPop3Proxy(t, dovecot.port, { pop3: { keepalive_seconds: 1 } }, inspector);
  const client = await RawPop3.connect(proxy.port);
  t.teardown(() => client.close());
  await client.login('alice', 'secret');
  t.match(await client.command('DELE 1'), /^\+OK/);
  t.match(await client.command('RSET'), /^\+OK/);
  client.send('RETR 1\r\n');
  t.equal(await client.line(5000), '+OK message follows; mailmoat is still inspecting it', 'committed by the keepalive');
  t.ok(await client.closedWithin(10_000), 'the connection is cut when the scanner fails');
  t.notMatch(client.pending.toString('latin1'), /\r\n\.\r\n$/, 'no final dot: the client cannot take it for a whole message');
  t.equal(await dovecot.messageCount('alice'), 1, 'the message is still on the server');
  t.match(proxy.retrievals[0], { verdict: 'aborted', keptAlive: true });
});
