// The SMTP command table as data (src/session/smtp/commands.ts): each relayed row names the
// reply class of acceptance and what the session learns then; refused rows carry their reply.
import t from 'tap';
import { accepted, asRefusal, COMMANDS, OWN_REQUESTS, PHASE_GROUP, parseCommand, replyClass, type CommandSpec } from '../../src/session/smtp/commands.js';
import { REPLIES, reply } from '../../src/errors.js';

const rows: Record<string, CommandSpec> = COMMANDS;

t.test('every relayed command is accepted by a 2xx, and learns what RFC 5321 says it should', async (t) => {
  const learnt: Record<string, string> = {};
  for (const [verb, spec] of Object.entries(rows)) {
    if (spec.action.kind !== 'forward') continue;
    t.equal(spec.action.expect, 2, `${verb} expects 2xx`);
    learnt[verb] = spec.action.onAccepted;
  }
  t.same(learnt, {
    HELO: 'greeted',
    EHLO: 'greeted-extended',
    MAIL: 'sender',
    RCPT: 'recipient',
    RSET: 'reset',
    NOOP: 'nothing',
    VRFY: 'nothing',
    EXPN: 'nothing',
    HELP: 'nothing',
    ETRN: 'nothing',
    QUIT: 'nothing',
    AUTH: 'nothing',
  });
});

t.test('the rows that change the session beyond state: MAIL checks SIZE=, QUIT closes, AUTH continues with SASL', async (t) => {
  const flagged = (flag: 'checksDeclaredSize' | 'closesSession' | 'continuesWithSasl'): string[] =>
    Object.entries(rows).flatMap(([verb, spec]) => (spec.action.kind === 'forward' && spec.action[flag] === true ? [verb] : []));
  t.same(flagged('checksDeclaredSize'), ['MAIL']);
  t.same(flagged('closesSession'), ['QUIT']);
  t.same(flagged('continuesWithSasl'), ['AUTH']);
  t.equal(rows.AUTH?.logArgument, false, 'AUTH arguments never reach a log');
  t.ok(rows.QUIT?.phases.includes('broken'), 'QUIT is answered after the upstream was lost');
});

t.test('commands the proxy answers itself: their reply, and they never reach the upstream', async (t) => {
  const own = Object.fromEntries(Object.entries(rows).flatMap(([verb, spec]) => (spec.action.kind === 'refuse' || spec.action.kind === 'close' ? [[verb, spec.action]] : [])));
  t.same(own.BDAT, { kind: 'refuse', reply: REPLIES.chunkingRefused });
  t.same(own.XCLIENT, { kind: 'refuse', reply: REPLIES.xclientRefused });
  t.equal(rows.XFORWARD?.action.kind, 'xforward', 'XFORWARD: believed from a trusted peer only (xforward.ts), refused from others');
  for (const verb of ['GET', 'POST', 'HEAD', 'PUT', 'CONNECT']) t.same(own[verb], { kind: 'close', reply: REPLIES.httpRequest }, verb);
  t.equal(rows.DATA?.action.kind, 'data');
  t.equal(rows.STARTTLS?.action.kind, 'starttls');
});

t.test('reply classes and the phase groups', async (t) => {
  t.same([reply(220, 'x'), reply(334, 'x'), reply(451, 'x'), reply(554, 'x')].map(replyClass), [2, 3, 4, 5]);
  t.equal(PHASE_GROUP.auth, 'awaiting-line');
  t.equal(PHASE_GROUP.forwarding, 'transaction');
});

t.test("the proxy's own upstream commands: DATA goes on with a 3yz, the others and the final dot complete with a 2yz", async (t) => {
  t.same(Object.fromEntries(Object.entries(OWN_REQUESTS).map(([name, request]) => [name, request.expect])), { DATA: 3, RSET: 2, NOOP: 2, STARTTLS: 2, QUIT: 2, 'final-dot': 2 });
  for (const [name, request] of Object.entries(OWN_REQUESTS)) {
    const wire = 'wire' in request ? request.wire.toString('latin1') : undefined;
    t.equal(wire, name === 'final-dot' ? undefined : `${name}\r\n`, `${name}: its line`);
  }
  t.equal(COMMANDS.DATA.action.expect, OWN_REQUESTS.DATA.expect, "the downstream's DATA goes on with the class the upstream's does");
  t.equal(COMMANDS.STARTTLS.action.expect, OWN_REQUESTS.STARTTLS.expect, 'and STARTTLS starts TLS on the same class on both legs');
});

t.test('acceptance is the class (RFC 5321 4.2.1): any 3yz after DATA, any 2yz after STARTTLS; the code and text never decide', async (t) => {
  const codes = (expect: 2 | 3, list: number[]): boolean[] => list.map((code) => accepted(expect, reply(code, 'x')));
  t.same(codes(3, [354, 352, 300, 399]), [true, true, true, true]);
  t.same(codes(3, [250, 220, 451, 554, 199, 654]), [false, false, false, false, false, false]);
  t.same(codes(2, [220, 250, 200, 299]), [true, true, true, true]);
  t.same(codes(2, [354, 334, 454, 501, 199, 654]), [false, false, false, false, false, false]);
});

t.test('a reply that is not acceptance reaches the downstream as it is when 4yz or 5yz, otherwise as the generic 451', async (t) => {
  for (const refusal of [reply(451, '4.3.0 busy'), reply(452, '4.3.1 full'), reply(554, '5.7.1 no')]) t.equal(asRefusal(refusal), refusal, `${refusal.code} relayed`);
  for (const odd of [reply(250, 'ok'), reply(354, 'go on'), reply(199, 'x'), reply(654, 'x'), reply(0, 'x')]) t.equal(asRefusal(odd), REPLIES.upstreamUnexpectedReply, `${odd.code}: the generic 451`);
  t.equal(REPLIES.upstreamUnexpectedReply.code, 451, 'a tempfail: nothing is lost');
});

t.test('parsing finds the row, case-insensitively, and keeps the line as the wire form', async (t) => {
  const parsed = parseCommand(Buffer.from('mail FROM:<a@example.com> SIZE=10', 'latin1'));
  t.equal(parsed.kind, 'command');
  if (parsed.kind !== 'command') return;
  t.equal(parsed.command.verb, 'MAIL');
  t.equal(parsed.command.spec, COMMANDS.MAIL);
  t.equal(parsed.command.wire.toString('latin1'), 'mail FROM:<a@example.com> SIZE=10\r\n');
  t.same(parseCommand(Buffer.from('FROB x', 'latin1')), { kind: 'unknown' });
  t.same(parseCommand(Buffer.from('MAIL\x00', 'latin1')), { kind: 'invalid' });
});
