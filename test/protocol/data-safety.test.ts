// "Nothing is lost": the downstream gets 250 only when the upstream accepted the message;
// every failure on the way is a 4xx, and a downstream that leaves mid-DATA never causes a final dot.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { Inspector } from '../../src/inspect/api.js';

const openTransaction = RawClient.openTransaction;

async function until(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await sleep(10);
  return condition();
}

t.test('upstream dies while the downstream sends DATA: 451 4.4.2, never 250', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await openTransaction(proxy.port);
  t.equal(client.replies[4]?.code, 354);
  client.send('Subject: x\r\n\r\nfirst half\r\n');
  await until(() => upstream.sessions.length === 1);
  await upstream.close();
  await sleep(50);
  client.send('second half\r\n.\r\n');
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 451);
  t.match(client.replies[5]?.lines[0], /^4\.4\.2/);
  t.equal((await client.command('MAIL FROM:<a@example.org>')).code, 421, 'a session without its upstream ends');
  t.same(upstream.payloads, [], 'the upstream never received a message');
});

t.test('upstream dies after the final dot: 451 4.4.2', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { final: () => 'close' });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await openTransaction(proxy.port);
  client.send('Subject: x\r\n\r\nbody\r\n.\r\n');
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 451);
  t.equal(proxy.transactions[0]?.verdict, 'tempfail');
});

t.test('upstream refuses the message: its 4xx and 5xx are relayed as they are', async (t) => {
  for (const refusal of ['452 4.3.1 Insufficient system storage', '554 5.7.1 Rejected by policy']) {
    const upstream = await ScriptedUpstream.start(t, { final: () => refusal });
    const proxy = await startTestProxy(t, upstream.port);
    const client = await openTransaction(proxy.port);
    client.send('Subject: x\r\n\r\nbody\r\n.\r\n');
    await client.waitForReplies(6);
    t.equal(`${client.replies[5]?.code} ${client.replies[5]?.lines[0]}`, refusal);
    client.close();
  }
});

t.test('upstream refuses DATA itself: the refusal is the final reply', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { data: () => '554 5.5.1 Error: no valid recipients' });
  const proxy = await startTestProxy(t, upstream.port);
  const client = await openTransaction(proxy.port);
  client.send('Subject: x\r\n\r\nbody\r\n.\r\n');
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 554);
  t.equal((await client.command('NOOP')).code, 250, 'the session goes on');
  client.close();
});

t.test('downstream disconnects mid-DATA: the upstream never receives DATA or a final dot', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await openTransaction(proxy.port);
  client.send('Subject: x\r\n\r\npartial body\r\n');
  await sleep(50);
  client.close();
  t.ok(await until(() => upstream.sessions[0]?.closed === true), 'the upstream connection is closed');
  t.notOk(upstream.sessions[0]?.commands.includes('DATA'), 'no DATA upstream');
  t.notOk(upstream.sessions[0]?.raw.includes('\r\n.\r\n'), 'no end of data upstream');
  t.same(upstream.payloads, []);
  t.ok(await until(() => proxy.transactions.length === 1));
  t.equal(proxy.transactions[0]?.verdict, 'aborted');
});

t.test('downstream half-closes mid-DATA: the same, nothing is delivered', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await openTransaction(proxy.port);
  client.socket.end('Subject: x\r\n\r\nno end of data follows\r\n');
  t.ok(await until(() => upstream.sessions[0]?.closed === true));
  t.same(upstream.payloads, []);
});

const verdictInspector = (verdict: Awaited<ReturnType<Inspector['inspect']>> | Error): Inspector => ({
  inspect: async () => {
    if (verdict instanceof Error) throw verdict;
    return verdict;
  },
});

t.test('inspector verdicts: tempfail 451, reject 554, a crash 451; the upstream gets RSET, not DATA', async (t) => {
  const cases = [
    { inspector: verdictInspector({ action: 'tempfail', reason: 'scanner unavailable' }), code: 451 },
    { inspector: verdictInspector({ action: 'reject', reason: 'policy forbids this' }), code: 554 },
    { inspector: verdictInspector(new Error('boom')), code: 451 },
  ];
  for (const { inspector, code } of cases) {
    const upstream = await ScriptedUpstream.start(t);
    const proxy = await startTestProxy(t, upstream.port, {}, inspector);
    const client = await openTransaction(proxy.port);
    client.send('Subject: x\r\n\r\nbody\r\n.\r\n');
    await client.waitForReplies(6);
    t.equal(client.replies[5]?.code, code);
    t.equal((await client.command('NOOP')).code, 250, 'the session goes on');
    t.same(upstream.sessions[0]?.commands.slice(-2), ['RSET', 'NOOP'], 'RSET cleared the upstream transaction');
    t.same(upstream.payloads, []);
    client.close();
  }
});

t.test('a rewrite verdict forwards the rewritten message', async (t) => {
  const replacement = Buffer.from('Subject: rewritten\r\n\r\n.starts with a dot\r\n');
  const inspector: Inspector = {
    inspect: async () => ({ action: 'rewrite', summary: 'test', findings: [], message: { size: replacement.length, open: async function* () { yield replacement; }, dispose: async () => undefined } }),
  };
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, {}, inspector);
  const client = await openTransaction(proxy.port);
  client.send('Subject: original\r\n\r\nbody\r\n.\r\n');
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 250);
  t.same(upstream.payloads.map((payload) => payload.toString()), ['Subject: rewritten\r\n\r\n..starts with a dot\r\n'], 'restuffed');
  client.close();
});

t.test('large message through the file spool arrives byte-identical', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { spool: { memory_threshold_bytes: 4096 } });
  const client = await openTransaction(proxy.port);
  const lines: string[] = ['Subject: big'];
  for (let i = 0; i < 60000; i++) lines.push(`${i % 7 === 0 ? '.' : ''}line ${i} ${'x'.repeat(i % 90)}`);
  const content = Buffer.from(lines.join('\r\n') + '\r\n');
  const wire = Buffer.from(content.toString('latin1').replace(/^\./gm, '..'), 'latin1');
  client.send(wire);
  client.send('.\r\n');
  await client.waitForReplies(6, 30000);
  t.equal(client.replies[5]?.code, 250);
  t.ok(upstream.payloads[0]?.equals(wire), `the upstream received the same ${wire.length} bytes`);
  client.close();
});

t.test('inspection follows direction: inbound inspected, outbound (internal network) not', async (t) => {
  let calls = 0;
  const counting: Inspector = {
    inspect: async (_message, context) => {
      calls++;
      t.equal(context.direction, 'inbound');
      return { action: 'pass' };
    },
  };
  const upstream = await ScriptedUpstream.start(t);
  const inbound = await startTestProxy(t, upstream.port, {}, counting);
  const outbound = await startTestProxy(t, upstream.port, { networks: { internal: ['127.0.0.0/8'] } }, counting);
  for (const proxy of [inbound, outbound]) {
    const client = await openTransaction(proxy.port);
    client.send('Subject: x\r\n\r\nbody\r\n.\r\n');
    await client.waitForReplies(6);
    client.close();
  }
  t.equal(calls, 1, 'only the inbound message was inspected');
  t.same([inbound.transactions[0]?.direction, inbound.transactions[0]?.inspected], ['inbound', true]);
  t.same([outbound.transactions[0]?.direction, outbound.transactions[0]?.inspected], ['outbound', false]);
  const line = outbound.logs.find((entry) => entry.msg === 'transaction');
  t.match(line, { direction: 'outbound', helo: 'c', sender: '<a@example.org>', recipients: 1, verdict: 'pass', upstreamReply: /^250 / }, 'the summary log line');
  t.ok(typeof line?.durationMs === 'number' && typeof line?.size === 'number' && typeof line?.session === 'string');
});

t.test('a spool that cannot be written: 451 4.3.0, nothing upstream, the session goes on', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { spool: { dir: '/nonexistent/mailmoat-spool', memory_threshold_bytes: 16 } });
  const client = await openTransaction(proxy.port);
  client.send('Subject: x\r\n\r\nlonger than sixteen bytes\r\n.\r\n');
  await client.waitForReplies(6);
  t.equal(client.replies[5]?.code, 451);
  t.match(client.replies[5]?.lines[0], /^4\.3\.0/);
  t.same(upstream.payloads, []);
  t.equal((await client.command('NOOP')).code, 250);
  client.close();
});

t.test('downstream resets while its message is inspected: no DATA upstream, one report', async (t) => {
  // The verdict comes only once the proxy has seen the reset (its session closed): no race with a clock.
  let inspecting = false;
  let verdictDue: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (verdictDue = resolve));
  const held: Inspector = {
    inspect: async () => {
      inspecting = true;
      await gate;
      return { action: 'pass' };
    },
  };
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, {}, held);
  const client = await openTransaction(proxy.port);
  client.send('Subject: x\r\n\r\nbody\r\n.\r\n');
  t.ok(await until(() => inspecting), 'the message is being inspected');
  client.socket.resetAndDestroy();
  t.ok(await until(() => proxy.activeSessions() === 0), 'the proxy saw the reset');
  verdictDue();
  t.ok(await until(() => proxy.transactions.length === 1));
  await sleep(300);
  t.equal(proxy.transactions.length, 1, 'reported once');
  t.notOk(upstream.sessions[0]?.commands.includes('DATA'), 'the message was not sent on for a sender that cannot hear the reply');
  t.same(upstream.payloads, []);
});

t.test('downstream half-closes after its final dot: the message is delivered and the 250 still sent', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port);
  const client = await openTransaction(proxy.port);
  client.socket.end('Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n');
  t.ok(await client.waitForClose());
  t.same(client.codes().slice(5), [250, 221]);
  t.equal(upstream.payloads.length, 1);
});
