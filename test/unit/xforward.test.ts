// XFORWARD attributes (Postfix XFORWARD_README): xtext values, [UNAVAILABLE], IPV6: addresses,
// what is relayed to an upstream offering only some attributes, and the per-transaction state.
import t from 'tap';
import { ForwardedClient, decodeXtext, offerXforward, offeredAttributes, parseXforward, relayedCommand, type XforwardTrust } from '../../src/session/smtp/xforward.js';

const pairs = (argument: string) => {
  const parsed = parseXforward(argument);
  if (parsed instanceof Error) throw parsed;
  return parsed;
};

const trust: XforwardTrust = {
  directionOf: (address) => (address.startsWith('10.') ? 'outbound' : 'inbound'),
  inspects: () => true,
  admit: () => ({ admitted: true, release: () => undefined }),
};

t.test('xtext: +XX is one byte, anything else malformed', async (t) => {
  t.equal(decodeXtext('mx+2Eexample'), 'mx.example');
  t.equal(decodeXtext('a+3Db'), 'a=b');
  t.equal(decodeXtext('bad+2'), undefined);
  t.equal(decodeXtext('bad+2e'), undefined, 'hex digits are upper case (RFC 3461 4)');
});

t.test('parse: names are case-insensitive, [UNAVAILABLE] in any case is no value', async (t) => {
  t.same(
    pairs('name=mx.example Addr=192.0.2.1 HELO=[unavailable]').map(({ name, value }) => [name, value]),
    [['NAME', 'mx.example'], ['ADDR', '192.0.2.1'], ['HELO', undefined]],
  );
  t.match(parseXforward('ADDR'), /unknown attribute/);
  t.match(parseXforward('SOURCE=LOCAL  COLOUR=red'), /unknown attribute COLOUR/);
  t.match(parseXforward('HELO=a+09b'), /malformed/, 'a tab after decoding');
});

t.test('the forwarded client: its address, direction, and reset', async (t) => {
  const client = new ForwardedClient();
  t.equal(client.active, false);
  t.equal(client.direction(trust), 'inbound', 'nothing forwarded: inbound, the inspected side');
  client.update(pairs('ADDR=IPV6:2001:db8::1'));
  t.equal(client.address, '2001:db8::1');
  client.update(pairs('HELO=pc.example ADDR=10.1.2.3'));
  t.same(client.describe(), { addr: '10.1.2.3', helo: 'pc.example' }, 'a later XFORWARD updates');
  t.equal(client.direction(trust), 'outbound');
  client.update(pairs('ADDR=not-an-address'));
  t.equal(client.address, undefined, 'an ADDR that is no IP address is not used');
  client.update(pairs('ADDR=[UNAVAILABLE] SOURCE=LOCAL'));
  t.equal(client.direction(trust), 'outbound', 'no address, SOURCE=LOCAL: outbound');
  client.reset();
  t.equal(client.describe(), undefined);
});

t.test('relay: only the attributes the upstream offers, or nothing', async (t) => {
  const offered = offeredAttributes(['mx.test', 'PIPELINING', 'xforward name addr helo', '8BITMIME']);
  t.same([...offered], ['NAME', 'ADDR', 'HELO']);
  t.equal(relayedCommand(pairs('NAME=a+2Eb ADDR=192.0.2.1 PORT=25'), offered)?.toString('latin1'), 'XFORWARD NAME=a+2Eb ADDR=192.0.2.1\r\n', 'values stay xtext as sent');
  t.equal(relayedCommand(pairs('PORT=25 SOURCE=REMOTE'), offered), undefined);
  t.equal(relayedCommand(pairs('ADDR=192.0.2.1'), offeredAttributes(['mx.test', 'PIPELINING'])), undefined, 'an upstream without XFORWARD');
  t.same(offerXforward({ code: 250, lines: ['mx.test', 'PIPELINING'] }).lines, ['mx.test', 'PIPELINING', 'XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE']);
  t.same(offerXforward({ code: 550, lines: ['no'] }).lines, ['no'], 'a refusal is left alone');
});
