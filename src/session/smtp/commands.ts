/**
 * The SMTP command table: what the proxy does with each verb a downstream sends.
 *
 * RFC 5321 4.1 (commands), RFC 2920 3.1 (which commands end a pipelining group),
 * RFC 4954 (AUTH), RFC 3030 (BDAT: refused, CHUNKING is not offered),
 * RFC 3207 (STARTTLS: per the listener's starttls policy). XCLIENT is refused:
 * relayed, it would let a downstream borrow the proxy's address. XFORWARD
 * (Postfix XFORWARD_README) is taken only from peers in `smtp.xforward_from`
 * (xforward.ts) and refused from anyone else.
 *
 * A relayed command says, as Postfix's smtpd_proxy_cmd(expect) does, which reply class
 * the upstream gives when it accepts (`expect`) and what the session learns then
 * (`onAccepted`): state follows the upstream's acceptance, never the command alone.
 * Any other reply is relayed as it is and changes nothing.
 *
 * `phases` lists the session phases in which the verb is accepted; `endsGroup`
 * marks the last command of a pipelined group (the proxy flushes upstream writes
 * there); `waitsForReply` stops reading further input until the reply is known
 * (the next bytes may not be commands); `logArgument` says whether the argument
 * may appear in logs.
 */
import { REPLIES } from '../../errors.js';
import type { Reply } from '../../errors.js';

export type Phase = 'connecting' | 'greeting' | 'command' | 'auth' | 'data' | 'inspecting' | 'forwarding' | 'broken' | 'closed';

/** Phase groups, as data: what each phase means to reading, deadlines and closing. */
export type PhaseGroup = 'opening' | 'awaiting-line' | 'transaction' | 'closed';

export const PHASE_GROUP = {
  /** Before the upstream's greeting was relayed: a downstream byte is an early talker. */
  connecting: 'opening',
  greeting: 'opening',
  /** The downstream owes a command line (or a SASL line). */
  command: 'awaiting-line',
  auth: 'awaiting-line',
  broken: 'awaiting-line',
  /** A message is captured, inspected or forwarded: the session closes only after its final reply. */
  data: 'transaction',
  inspecting: 'transaction',
  forwarding: 'transaction',
  closed: 'closed',
} as const satisfies Record<Phase, PhaseGroup>;

export const inGroup = (phase: Phase, group: PhaseGroup): boolean => PHASE_GROUP[phase] === group;

/**
 * A reply's class: its first digit. RFC 5321 4.2.1: a client "will be able to determine its next
 * action (proceed as planned, redo, retrench, etc.) by examining this first digit"; the other two
 * digits and the text never decide whether a command was accepted.
 */
export type ReplyClass = 2 | 3 | 4 | 5;

export const replyClass = (reply: Reply): number => Math.floor(reply.code / 100);

/** Whether `reply` is of the class that means acceptance (`expect`). */
export const accepted = (expect: ReplyClass, reply: Reply): boolean => replyClass(reply) === expect;

/** The reply a downstream gets for an upstream's non-acceptance: a 4yz or 5yz as it is, any other class the generic 451 (upstream text is not trusted). */
export function asRefusal(reply: Reply): Reply {
  const kind = replyClass(reply);
  return kind === 4 || kind === 5 ? reply : REPLIES.upstreamUnexpectedReply;
}

/** A command the proxy sends upstream on its own, and the reply class that means the upstream accepted it. */
export interface OwnRequest {
  /** The line sent; the final dot has none here (the payload's writer ends the message with it). */
  wire?: Buffer;
  expect: ReplyClass;
}

const ownLine = (verb: string): Buffer => Buffer.from(`${verb}\r\n`, 'latin1');

/**
 * The proxy's own upstream commands (Postfix smtpd_proxy_cmd(expect) for each): DATA goes on with any
 * 3yz (354 is the usual one, not the only one), every other completes with a 2yz (RFC 3207 4 names
 * 220 for STARTTLS; Postfix's smtp client, like RFC 5321 4.2.1, goes by the class). The final dot's 2yz
 * delivers the message. QUIT's reply is not awaited: the session is over when it is sent.
 */
export const OWN_REQUESTS = {
  DATA: { wire: ownLine('DATA'), expect: 3 },
  RSET: { wire: ownLine('RSET'), expect: 2 },
  NOOP: { wire: ownLine('NOOP'), expect: 2 },
  STARTTLS: { wire: ownLine('STARTTLS'), expect: 2 },
  QUIT: { wire: ownLine('QUIT'), expect: 2 },
  'final-dot': { expect: 2 },
} as const satisfies Record<string, OwnRequest>;

/** What the session learns when the upstream accepts a relayed command. */
export type OnAccepted =
  | 'nothing'
  /** HELO: a new session; the transaction is reset. */
  | 'greeted'
  /** EHLO: a new session, and the extensions offered (the reply relayed is filtered). */
  | 'greeted-extended'
  | 'sender'
  | 'recipient'
  | 'reset';

export interface Relay {
  kind: 'forward';
  /** The reply class of acceptance (Postfix smtpd_proxy_cmd's expect). */
  expect: ReplyClass;
  onAccepted: OnAccepted;
  /** AUTH: a 334 continuation starts the SASL exchange (RFC 4954 4). */
  continuesWithSasl?: true;
  /** MAIL: a SIZE= declared over limits.max_message_bytes is refused by the proxy (RFC 1870). */
  checksDeclaredSize?: true;
  /** QUIT: the session ends once the reply is relayed, whatever it is. */
  closesSession?: true;
}

export type CommandAction =
  | Relay
  /** DATA: answered by the proxy once earlier replies are in (a 3yz goes on); the upstream gets DATA after inspection. */
  | { kind: 'data'; expect: 3 }
  /** STARTTLS: what happens depends on the listener's starttls policy (session.ts); a 2yz starts TLS. */
  | { kind: 'starttls'; expect: 2 }
  /** XFORWARD: believed from a trusted peer, refused from others (session.ts, xforward.ts). */
  | { kind: 'xforward' }
  | { kind: 'refuse'; reply: Reply }
  | { kind: 'close'; reply: Reply };

export interface CommandSpec {
  phases: readonly Phase[];
  action: CommandAction;
  endsGroup: boolean;
  waitsForReply: boolean;
  logArgument: boolean;
}

const forward = (endsGroup: boolean, relay: Partial<Relay> = {}, extra: Partial<CommandSpec> = {}): CommandSpec => ({
  phases: ['command'],
  action: { kind: 'forward', expect: 2, onAccepted: 'nothing', ...relay },
  endsGroup,
  waitsForReply: false,
  logArgument: true,
  ...extra,
});

const refuse = (reply: Reply): CommandSpec => ({
  phases: ['command'],
  action: { kind: 'refuse', reply },
  endsGroup: true,
  waitsForReply: false,
  logArgument: true,
});

const httpProbe: CommandSpec = {
  phases: ['command'],
  action: { kind: 'close', reply: REPLIES.httpRequest },
  endsGroup: true,
  waitsForReply: true,
  logArgument: true,
};

export const COMMANDS = {
  HELO: forward(true, { onAccepted: 'greeted' }),
  EHLO: forward(true, { onAccepted: 'greeted-extended' }),
  MAIL: forward(false, { onAccepted: 'sender', checksDeclaredSize: true }),
  RCPT: forward(false, { onAccepted: 'recipient' }),
  RSET: forward(false, { onAccepted: 'reset' }),
  NOOP: forward(true),
  VRFY: forward(true),
  EXPN: forward(true),
  HELP: forward(true),
  ETRN: forward(true),
  QUIT: forward(true, { closesSession: true }, { phases: ['command', 'broken'], waitsForReply: true }),
  AUTH: forward(true, { continuesWithSasl: true }, { waitsForReply: true, logArgument: false }),
  DATA: { phases: ['command'], action: { kind: 'data', expect: OWN_REQUESTS.DATA.expect }, endsGroup: true, waitsForReply: true, logArgument: true },
  BDAT: refuse(REPLIES.chunkingRefused),
  STARTTLS: { phases: ['command'], action: { kind: 'starttls', expect: OWN_REQUESTS.STARTTLS.expect }, endsGroup: true, waitsForReply: true, logArgument: true },
  XCLIENT: refuse(REPLIES.xclientRefused),
  XFORWARD: { phases: ['command'], action: { kind: 'xforward' }, endsGroup: false, waitsForReply: false, logArgument: true },
  TURN: refuse(REPLIES.notImplemented),
  GET: httpProbe,
  POST: httpProbe,
  HEAD: httpProbe,
  PUT: httpProbe,
  CONNECT: httpProbe,
} as const satisfies Record<string, CommandSpec>;

export type Verb = keyof typeof COMMANDS;

export interface ParsedCommand {
  verb: Verb;
  spec: CommandSpec;
  argument: string;
  /** The canonical line sent upstream, CRLF-terminated. */
  wire: Buffer;
}

const isVerb = (word: string): word is Verb => Object.hasOwn(COMMANDS, word);

/** Control characters other than TAB never appear in a valid command line. */
function hasControlCharacters(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) {
    const byte = line[i] as number;
    if ((byte < 0x20 && byte !== 0x09) || byte === 0x7f) return true;
  }
  return false;
}

export type CommandParse =
  | { kind: 'command'; command: ParsedCommand }
  | { kind: 'unknown' }
  | { kind: 'invalid' };

export function parseCommand(line: Buffer): CommandParse {
  if (hasControlCharacters(line)) return { kind: 'invalid' };
  const text = line.toString('latin1');
  const space = text.indexOf(' ');
  const word = (space === -1 ? text : text.slice(0, space)).toUpperCase();
  if (!isVerb(word)) return { kind: 'unknown' };
  const argument = space === -1 ? '' : text.slice(space + 1);
  const wire = Buffer.concat([line, Buffer.from('\r\n', 'latin1')]);
  return { kind: 'command', command: { verb: word, spec: COMMANDS[word], argument, wire } };
}

/** RFC 1870 6: the SIZE= parameter of MAIL FROM, or undefined when absent or malformed. */
export function declaredSize(mailArgument: string): number | undefined {
  const match = /(?:^|\s)SIZE=(\d{1,15})(?:\s|$)/i.exec(mailArgument);
  return match ? Number(match[1]) : undefined;
}

/** The reverse-path or forward-path of MAIL FROM:<a> / RCPT TO:<a>, for logs. */
export function pathOf(argument: string): string {
  const match = /^(?:FROM|TO):\s*(<[^>]*>|\S*)/i.exec(argument);
  return match?.[1] ?? '';
}
