// The POP3 command table (RFC 1939, 2449, 5034), status lines, the CAPA filter,
// the USER name#host form, and which upstreams that form may reach.
import t from 'tap';
import { parseCommand, parseProxyLogin } from '../../src/session/pop3/commands.js';
import { filterCapabilities, statusOf } from '../../src/session/pop3/responses.js';
import { pop3UpstreamAllowList } from '../../src/policy/resolve.js';

const line = (text: string): Buffer => Buffer.from(text, 'latin1');

t.test('multi-line responses: LIST and UIDL only without an argument; RETR, TOP, CAPA always', async (t) => {
  const multiline = (text: string): boolean | undefined => {
    const parsed = parseCommand(line(text));
    return parsed.kind === 'command' ? parsed.spec.multiline(parsed.argument) : undefined;
  };
  t.same(['LIST', 'LIST 1', 'UIDL', 'uidl 3', 'RETR 1', 'TOP 1 0', 'CAPA', 'STAT', 'DELE 1', 'AUTH', 'AUTH PLAIN'].map(multiline), [
    true, false, true, false, true, true, true, false, false, true, false,
  ]);
});

t.test('verbs are case-insensitive; arguments are relayed as received; controls are invalid', async (t) => {
  t.match(parseCommand(line('retr 7')), { kind: 'command', verb: 'RETR', argument: '7' });
  t.match(parseCommand(line('PASS a secret with spaces ')), { kind: 'command', verb: 'PASS', argument: 'a secret with spaces ' });
  t.match(parseCommand(line('PASS pässwörd')), { kind: 'command', argument: 'pässwörd' });
  t.match(parseCommand(line('XTND XMIT')), { kind: 'unknown', verb: 'XTND' });
  t.match(parseCommand(line('RETR\t1')), { kind: 'invalid' });
  t.match(parseCommand(line('RETR 1\r\nDELE 1')), { kind: 'invalid' });
  t.match(parseCommand(line('')), { kind: 'invalid' });
  t.match(parseCommand(line('PASS x')), { kind: 'command', spec: { logArgument: false } });
  t.match(parseCommand(line('AUTH PLAIN abc')), { kind: 'command', spec: { logArgument: false } });
});

t.test('states: RETR only in TRANSACTION, USER only in AUTHORIZATION, CAPA and QUIT in both', async (t) => {
  const states = (text: string): readonly string[] => {
    const parsed = parseCommand(line(text));
    return parsed.kind === 'command' ? parsed.spec.states : [];
  };
  t.same(states('RETR 1'), ['transaction']);
  t.same(states('USER a'), ['authorization']);
  t.same(states('CAPA'), ['authorization', 'transaction']);
  t.same(states('QUIT'), ['authorization', 'transaction']);
});

t.test('status lines', async (t) => {
  t.same(['+OK', '+OK 12 octets', '-ERR', '-ERR [SYS/TEMP] x', '+ ', '+', '+ dGVzdA==', '+OKAY', '-ERROR', 'hello', ''].map((text) => statusOf(line(text))), [
    'ok', 'ok', 'err', 'err', 'continue', 'continue', 'continue', undefined, undefined, undefined, undefined,
  ]);
});

t.test('CAPA: PIPELINING is withheld, STLS only when the listener offers it, unknown capabilities pass', async (t) => {
  const capabilities = ['TOP', 'UIDL', 'STLS', 'pipelining', 'SASL PLAIN LOGIN', 'RESP-CODES', 'X-FUTURE 1'].map(line);
  const text = (kept: Buffer[]): string[] => kept.map((capability) => capability.toString('latin1'));
  t.same(text(filterCapabilities(capabilities, false)), ['TOP', 'UIDL', 'SASL PLAIN LOGIN', 'RESP-CODES', 'X-FUTURE 1']);
  t.same(text(filterCapabilities(capabilities, true)), ['TOP', 'UIDL', 'STLS', 'SASL PLAIN LOGIN', 'RESP-CODES', 'X-FUTURE 1']);
});

t.test('USER name#host[:port]: the last # separates the host', async (t) => {
  t.same(parseProxyLogin('alice#pop.example.com'), { user: 'alice', host: 'pop.example.com', port: undefined });
  t.same(parseProxyLogin('alice@example.com#pop.example.com:1110'), { user: 'alice@example.com', host: 'pop.example.com', port: 1110 });
  t.same(parseProxyLogin('a#b#mail.example.org'), { user: 'a#b', host: 'mail.example.org', port: undefined });
  t.same(parseProxyLogin('bob#[::1]:110'), { user: 'bob', host: '::1', port: 110 });
  for (const bad of ['alice', '#host', 'alice#', 'alice#host:0', 'alice#host:70000', 'alice#ho st', 'alice#host:x']) t.equal(parseProxyLogin(bad), undefined, bad);
});

t.test('pop3.upstream_hosts and upstream_ports: wildcards, and an empty list allows nothing', async (t) => {
  const allowed = pop3UpstreamAllowList({ upstream_hosts: ['*.example.com', '192.0.2.10'], upstream_ports: [110, 1110], keepalive_seconds: 10, idle_seconds: 600 });
  t.ok(allowed('pop.example.com', 110));
  t.ok(allowed('POP.EXAMPLE.COM', 1110));
  t.ok(allowed('192.0.2.10', 110));
  t.notOk(allowed('example.com.evil.net', 110), 'anchored');
  t.notOk(allowed('pop.example.com', 25), 'a port outside the list');
  t.notOk(allowed('192.0.2.11', 110));
  const network = pop3UpstreamAllowList({ upstream_hosts: ['10.0.0.*', '2001:db8::*', '*.example.org'], upstream_ports: [110], keepalive_seconds: 10, idle_seconds: 600 });
  t.ok(network('10.0.0.1', 110), 'an IP pattern matches the IP literal');
  t.ok(network('2001:db8::5', 110));
  t.notOk(network('10.0.0.1.nip.io', 110), 'but never a DNS name that begins like it');
  t.notOk(network('10.0.0.1.example.org.evil', 110));
  t.ok(network('mail.example.org', 110), 'a name pattern still matches names');
  t.ok(pop3UpstreamAllowList({ upstream_hosts: ['*'], upstream_ports: [110], keepalive_seconds: 10, idle_seconds: 600 })('pop.example.net', 110), '"*" is any host');
  const none = pop3UpstreamAllowList({ upstream_hosts: [], upstream_ports: [110], keepalive_seconds: 10, idle_seconds: 600 });
  t.notOk(none('pop.example.com', 110), 'not an open proxy by default');
});
