// XFORWARD (Postfix XFORWARD_README) through the proxy, over real sockets: from a peer in
// smtp.xforward_from the forwarded client's address decides the direction (and so inspection),
// the per-address limits and the log; the attributes last one transaction; the command goes
// upstream only with the attributes the upstream offers, else the proxy answers it; from any
// other peer it is refused and never reaches the upstream.
import t from 'tap';
import { RawClient } from '../helpers/client.js';
import { ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { InspectionContext, Inspector } from '../../src/inspect/api.js';

const TRUSTED = { smtp: { xforward_from: ['127.0.0.1/32'] } };
const MESSAGE = 'Subject: hi\r\n\r\nbody\r\n.\r\n';
/** An upstream that offers XFORWARD NAME ADDR (the scripted default EHLO) and takes it. */
const TAKES_XFORWARD = { answer: (verb: string) => (verb === 'XFORWARD' ? '250 2.0.0 Ok' : undefined) };

/** An inspector that passes everything and records what it was told about each message. */
function recordingInspector(): { inspector: Inspector; seen: InspectionContext[] } {
  const seen: InspectionContext[] = [];
  return { seen, inspector: { inspect: async (_message, context) => (seen.push(context), { action: 'pass' }) } };
}

/** Pipelines XFORWARD (when given), MAIL, RCPT, DATA and the message; the replies to them. */
async function transaction(client: RawClient, xforward?: string): Promise<number[]> {
  const before = client.replies.length;
  const lines = [...(xforward === undefined ? [] : [`XFORWARD ${xforward}`]), 'MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>', 'DATA'];
  client.send(`${lines.join('\r\n')}\r\n`);
  await client.waitForReplies(before + lines.length);
  client.send(MESSAGE);
  const replies = await client.waitForReplies(before + lines.length + 1);
  return replies.slice(before).map((reply) => reply.code);
}

t.test('a trusted peer: offered XFORWARD, the forwarded address decides the direction, one transaction long', async (t) => {
  const upstream = await ScriptedUpstream.start(t, TAKES_XFORWARD);
  const { inspector, seen } = recordingInspector();
  const proxy = await startTestProxy(t, upstream.port, { ...TRUSTED, networks: { internal: ['192.0.2.0/24'] } }, inspector);
  const client = await RawClient.greeted(proxy.port);
  const ehlo = await client.command('EHLO filter.test');
  t.equal(ehlo.lines.at(-1), 'XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE', 'XFORWARD is offered to the trusted peer');
  t.equal(ehlo.lines.filter((line) => line.startsWith('XFORWARD')).length, 1, 'once (the upstream offer is not relayed as well)');

  t.same(await transaction(client, 'NAME=mx.example.com ADDR=198.51.100.7 PROTO=ESMTP HELO=mx.example.com'), [250, 250, 250, 354, 250]);
  t.same(await transaction(client, 'NAME=[UNAVAILABLE] ADDR=192.0.2.9 HELO=pc.internal'), [250, 250, 250, 354, 250]);
  t.same(await transaction(client), [250, 250, 354, 250], 'then one without XFORWARD');

  const [outside, inside, own] = proxy.transactions;
  t.match(outside, { direction: 'inbound', inspected: true, xforward: { name: 'mx.example.com', addr: '198.51.100.7', proto: 'ESMTP', helo: 'mx.example.com' } });
  t.match(inside, { direction: 'outbound', inspected: false, xforward: { addr: '192.0.2.9', helo: 'pc.internal' } }, 'an internal client: outbound, not inspected');
  t.notOk('name' in (inside?.xforward ?? {}), 'an unavailable attribute is not logged');
  t.match(own, { direction: 'inbound', inspected: true }, 'without XFORWARD: the peer itself');
  t.notOk(own !== undefined && 'xforward' in own, 'the attributes were forgotten after the transaction');
  t.same(
    seen.map((context) => context.client),
    [{ address: '198.51.100.7', helo: 'mx.example.com' }, { address: '127.0.0.1', helo: 'filter.test' }],
    'the inspector (and so SPF/DMARC) sees the forwarded client, then the peer',
  );
  const relayed = (upstream.sessions[0]?.commands ?? []).filter((command) => command.startsWith('XFORWARD'));
  t.same(relayed, ['XFORWARD NAME=mx.example.com ADDR=198.51.100.7', 'XFORWARD NAME=[UNAVAILABLE] ADDR=192.0.2.9'], 'relayed with the attributes the upstream offers (NAME ADDR)');
  client.close();
});

t.test('an upstream without XFORWARD: the proxy answers it; RSET and EHLO forget it; IPv6 addresses', async (t) => {
  const upstream = await ScriptedUpstream.start(t, { ehlo: ['upstream.test', 'PIPELINING', '8BITMIME'] });
  const { inspector, seen } = recordingInspector();
  const proxy = await startTestProxy(t, upstream.port, TRUSTED, inspector);
  const client = await RawClient.greeted(proxy.port);
  t.equal((await client.command('EHLO filter.test')).lines.at(-1), 'XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE');
  t.same(await transaction(client, 'ADDR=IPV6:2001:db8::5 HELO=v6.example'), [250, 250, 250, 354, 250]);
  client.send('XFORWARD ADDR=198.51.100.1\r\nRSET\r\n');
  await client.waitForReplies(client.replies.length + 2);
  t.same(await transaction(client), [250, 250, 354, 250], 'after RSET');
  t.same(seen.map((context) => context.client?.address), ['2001:db8::5', '127.0.0.1'], 'IPV6: prefix removed; RSET forgot the forwarded address');
  t.match(proxy.transactions[0]?.xforward, { addr: 'IPV6:2001:db8::5', helo: 'v6.example' });
  t.notOk((upstream.sessions[0]?.commands ?? []).some((command) => command.startsWith('XFORWARD')), 'nothing relayed: the upstream does not offer it');
  client.close();
});

t.test('malformed or misplaced XFORWARD: 501 and 503, the session goes on', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, TRUSTED);
  const client = await RawClient.greeted(proxy.port);
  await client.command('EHLO filter.test');
  t.equal((await client.command('XFORWARD')).code, 501, 'no attribute');
  t.equal((await client.command('XFORWARD COLOUR=blue')).code, 501, 'unknown attribute');
  t.equal((await client.command('XFORWARD ADDR=1.2.3.4+Z1')).code, 501, 'bad xtext');
  t.equal((await client.command(`XFORWARD NAME=${'a'.repeat(256)}`)).code, 501, 'value over 255 characters');
  t.equal((await client.command('XFORWARD HELO=caf+C3+A9')).code, 501, 'non-ASCII after decoding');
  t.equal((await client.command('MAIL FROM:<a@example.org>')).code, 250);
  t.equal((await client.command('XFORWARD ADDR=198.51.100.7')).code, 503, 'inside a mail transaction');
  t.equal((await client.command('RCPT TO:<b@example.net>')).code, 250, 'the transaction goes on');
  t.notOk((upstream.sessions[0]?.commands ?? []).some((command) => command.startsWith('XFORWARD')), 'none reached the upstream');
  client.close();
});

t.test('an untrusted peer: no XFORWARD offered, the command refused and never relayed', async (t) => {
  const upstream = await ScriptedUpstream.start(t);
  const proxy = await startTestProxy(t, upstream.port, { smtp: { xforward_from: ['192.0.2.0/24'] } });
  const client = await RawClient.greeted(proxy.port);
  const ehlo = await client.command('EHLO client.test');
  t.notOk(ehlo.lines.some((line) => line.startsWith('XFORWARD')), 'not offered');
  t.same(await transaction(client, 'ADDR=192.0.2.1'), [502, 250, 250, 354, 250]);
  t.notOk(proxy.transactions[0] !== undefined && 'xforward' in proxy.transactions[0], 'the claim changed nothing');
  t.notOk((upstream.sessions[0]?.commands ?? []).some((command) => command.startsWith('XFORWARD')));
  client.close();
});

t.test('per-address limits follow the forwarded client, not the exempt peer', async (t) => {
  const upstream = await ScriptedUpstream.start(t, TAKES_XFORWARD);
  const proxy = await startTestProxy(t, upstream.port, { ...TRUSTED, limits: { exempt: ['127.0.0.1/32'], max_connections_per_address_per_minute: 2 } });
  const client = await RawClient.greeted(proxy.port);
  await client.command('EHLO filter.test');
  const codes = [];
  for (let n = 0; n < 2; n++) codes.push(await transaction(client, 'ADDR=198.51.100.7'));
  t.same(codes, [[250, 250, 250, 354, 250], [250, 250, 250, 354, 250]], 'two messages from 198.51.100.7 a minute');
  const before = client.replies.length;
  client.send('XFORWARD ADDR=198.51.100.7\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
  const third = (await client.waitForReplies(before + 4)).slice(before).map((reply) => reply.code);
  t.same(third.slice(0, 2), [250, 451], 'the third is tempfailed at MAIL (it waits in the peer queue)');
  t.ok((third[3] ?? 0) >= 500, `and DATA is refused, no 354: ${third[3]}`);
  t.equal((await client.command('RSET')).code, 250);
  t.same(await transaction(client, 'ADDR=198.51.100.8'), [250, 250, 250, 354, 250], 'another client through the same peer is not limited');
  t.ok(proxy.logs.some((line) => line.limit === 'max_connections_per_address_per_minute' && line.client === '198.51.100.7'), 'the limit is logged with the forwarded address');
  t.equal(upstream.payloads.length, 3, 'three messages delivered, the tempfailed one not');
  client.close();
});
