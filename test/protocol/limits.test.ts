// Every limit ends with a clear reply: line length, unknown commands, early talkers, HTTP probes,
// message size, and the idle and reply timeouts of each phase.
import t from 'tap';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';

t.test('a command line over max_command_line_bytes gets 500 5.5.2 and the session goes on', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  const long = await client.command(`NOOP ${'x'.repeat(5000)}`);
  t.equal(long.code, 500);
  t.match(long.lines[0], /^5\.5\.2/);
  t.equal((await client.command('NOOP')).code, 250);
  t.notOk(upstream.sessions[0]?.commands.some((command) => command.length > 4096), 'the long line never went upstream');
  client.close();
});

t.test('10 unknown commands: 421 and close', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  client.send('BOGUS\r\n'.repeat(12));
  t.ok(await client.waitForClose());
  t.same(client.codes(), [220, 500, 500, 500, 500, 500, 500, 500, 500, 500, 421]);
});

t.test('an early talker gets 421 before any greeting', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { greeting: null });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.connect(proxy.port);
  client.send('EHLO too.early\r\n');
  t.ok(await client.waitForClose());
  t.same(client.codes(), [421]);
  t.match(client.replies[0]?.lines[0], /before the greeting/);
});

t.test('an HTTP request on the SMTP port gets 421 and close', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await RawClient.greeted(proxy.port);
  client.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  t.ok(await client.waitForClose());
  t.same(client.codes(), [220, 421]);
});

t.test('message size: MAIL SIZE= over the limit and an over-long DATA both get 552 5.3.4', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { limits: { max_message_bytes: 1000 } });
  const client = await RawClient.greeted(proxy.port);
  const ehlo = await client.command('EHLO c');
  t.ok(ehlo.lines.includes('SIZE 1000'), 'EHLO advertises the proxy limit');
  t.equal((await client.command('MAIL FROM:<a@example.org> SIZE=5000')).code, 552);
  t.equal((await client.command('MAIL FROM:<a@example.org> SIZE=500')).code, 250);
  t.equal((await client.command('RCPT TO:<b@example.net>')).code, 250);
  t.equal((await client.command('DATA')).code, 354);
  client.send(`Subject: big\r\n\r\n${'y'.repeat(3000)}\r\n.\r\n`);
  await client.waitForReplies(7);
  t.equal(client.replies[6]?.code, 552);
  t.same(upstream.payloads, [], 'nothing over the limit reached the upstream');
  t.equal((await client.command('NOOP')).code, 250);
  client.close();
});

t.test('bare_line_endings: reject refuses a message with bare LF (550 5.6.0)', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { smtp: { bare_line_endings: 'reject' } });
  const client = await RawClient.openTransaction(proxy.port);
  client.send('Subject: x\r\n\r\nbare\nline\r\n.\r\n');
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 550);
  t.same(upstream.payloads, []);
  client.close();
});

t.test('idle timeouts per phase', async (t) => {
  t.test('command phase: 421 after command_seconds', async (t) => {
    const upstream = await ScriptedUpstream.start(t);
    const proxy = await startTestProxy(t, upstream.port, { timeouts: { command_seconds: 0.3 } });
    const client = await RawClient.connect(proxy.port);
    t.ok(await client.waitForClose(3000));
    t.same(client.codes(), [220, 421]);
    t.ok(upstream.sessions[0]?.commands.includes('QUIT'), 'the upstream got a polite QUIT');
  });
  t.test('data phase: 421 after data_seconds, nothing upstream', async (t) => {
    const upstream = await ScriptedUpstream.start(t);
    const proxy = await startTestProxy(t, upstream.port, { timeouts: { data_seconds: 0.3 } });
    const client = await RawClient.greeted(proxy.port);
    client.send('EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: slow\r\n');
    t.ok(await client.waitForClose(3000));
    t.same(client.codes(), [220, 250, 250, 250, 354, 421]);
    t.same(upstream.payloads, []);
    t.notOk(upstream.sessions[0]?.commands.includes('DATA'));
  });
  t.test('upstream greeting: 421 4.4.1 after greeting_seconds', async (t) => {
    const upstream = await ScriptedUpstream.start(t, { greeting: null });
    const proxy = await startTestProxy(t, upstream.port, { timeouts: { greeting_seconds: 0.3 } });
    const client = await RawClient.connect(proxy.port);
    t.ok(await client.waitForClose(3000));
    t.same(client.codes(), [421]);
    t.match(client.replies[0]?.lines[0], /^4\.4\.1/);
  });
  t.test('upstream reply to a command: 421 after upstream_reply_seconds', async (t) => {
    const upstream = await ScriptedUpstream.start(t, { answer: (verb) => (verb === 'MAIL' ? 'stall' : undefined) });
    const proxy = await startTestProxy(t, upstream.port, { timeouts: { upstream_reply_seconds: 0.3 } });
    const client = await RawClient.greeted(proxy.port);
    client.send('MAIL FROM:<a@example.org>\r\n');
    t.ok(await client.waitForClose(3000));
    t.same(client.codes(), [220, 421]);
  });
  t.test('upstream reply to the final dot: 451 after final_reply_seconds, never 250', async (t) => {
    const upstream = await ScriptedUpstream.start(t, { final: () => 'stall' });
    const proxy = await startTestProxy(t, upstream.port, { timeouts: { final_reply_seconds: 0.3 } });
    const client = await RawClient.openTransaction(proxy.port);
    client.send('Subject: x\r\n\r\nbody\r\n.\r\n');
    await client.waitForReplies(6, 3000);
    t.equal(client.replies[5]?.code, 451);
    t.match(client.replies[5]?.lines[0], /^4\.4\.2/);
    client.close();
  });
});

t.test('upstream keepalive: NOOP while a slow downstream sends DATA', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { timeouts: { upstream_keepalive_seconds: 0.1 } });
  const client = await RawClient.openTransaction(proxy.port);
  client.send('Subject: x\r\n\r\n');
  // The rest of the message waits until the upstream has seen two keepalives (however long a loaded machine takes).
  const noops = (): number => upstream.sessions[0]?.commands.filter((command) => command === 'NOOP').length ?? 0;
  while (noops() < 2) await sleep(10);
  client.send('body\r\n.\r\n');
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 250);
  t.ok(noops() >= 2, `the upstream got ${noops()} keepalive NOOPs`);
  t.equal(upstream.payloads[0]?.toString(), 'Subject: x\r\n\r\nbody\r\n');
  client.close();
});

t.test('unreachable upstream: 421 4.4.1', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const proxy = await startTestProxy(t, port);
  const client = await RawClient.connect(proxy.port);
  t.ok(await client.waitForClose());
  t.same(client.codes(), [421]);
  t.match(client.replies[0]?.lines[0], /^4\.4\.1/);
});

t.test('upstream connect timeout: 421 4.4.1 after upstream_connect_seconds', async (t) => {
  // A listener whose accept queue is full (backlog 0, never accepting) drops new SYNs: connect hangs.
  const holder = spawn('python3', ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => holder.kill());
  const [portLine] = (await once(holder.stdout, 'data')) as [Buffer];
  const port = Number(portLine.toString().trim());
  const fillers: Socket[] = [];
  t.teardown(() => fillers.forEach((socket) => socket.destroy()));
  const { connect } = await import('node:net');
  for (let i = 0; i < 4; i++) fillers.push(connect({ host: '127.0.0.1', port }).on('error', () => undefined));
  await sleep(200);
  const proxy = await startTestProxy(t, port, { timeouts: { upstream_connect_seconds: 0.5 } });
  const started = Date.now();
  const client = await RawClient.connect(proxy.port);
  t.ok(await client.waitForClose(5000));
  t.same(client.codes(), [421]);
  t.match(client.replies[0]?.lines[0], /^4\.4\.1/);
  t.ok(Date.now() - started >= 400, 'it waited for the connect timeout');
});
