/**
 * The POP3 command table: in which state each command is accepted, whether its
 * positive response is multi-line, and what the session does with it.
 *
 * RFC 1939 (USER, PASS, APOP, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT, TOP,
 * UIDL; LIST and UIDL are multi-line only without an argument, -ERR is always
 * one line), RFC 2449 (CAPA), RFC 5034 (AUTH with SASL continuation lines;
 * `AUTH` alone lists mechanisms, multi-line), RFC 2595 (STLS: refused until a TLS
 * policy applies), RFC 6856 (UTF8, LANG). Any other verb is refused by the proxy:
 * relayed, its response could not be framed.
 */

export type Pop3State = 'authorization' | 'transaction';

export type CommandRole =
  | 'forward'
  /** USER: in `from-username` mode it names the upstream too. */
  | 'user'
  /** PASS, APOP: a positive answer enters the transaction state. */
  | 'login'
  | 'auth'
  | 'capa'
  | 'stls'
  /** RETR, TOP: the response is captured and inspected. */
  | 'retrieve'
  | 'quit';

export interface CommandSpec {
  states: readonly Pop3State[];
  role: CommandRole;
  /** Whether a +OK response to this command with this argument is followed by lines and a dot. */
  multiline: (argument: string) => boolean;
  /** PASS, APOP and AUTH arguments never reach a log. */
  logArgument: boolean;
}

const both: readonly Pop3State[] = ['authorization', 'transaction'];
const authorization: readonly Pop3State[] = ['authorization'];
const transaction: readonly Pop3State[] = ['transaction'];
const never = (): boolean => false;
const always = (): boolean => true;
const withoutArgument = (argument: string): boolean => argument === '';

const spec = (states: readonly Pop3State[], role: CommandRole, multiline: (argument: string) => boolean = never, logArgument = true): CommandSpec => ({
  states,
  role,
  multiline,
  logArgument,
});

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  USER: spec(authorization, 'user'),
  PASS: spec(authorization, 'login', never, false),
  APOP: spec(authorization, 'login', never, false),
  AUTH: spec(authorization, 'auth', withoutArgument, false),
  STLS: spec(authorization, 'stls'),
  UTF8: spec(authorization, 'forward'),
  CAPA: spec(both, 'capa', always),
  LANG: spec(both, 'forward', withoutArgument),
  QUIT: spec(both, 'quit'),
  STAT: spec(transaction, 'forward'),
  LIST: spec(transaction, 'forward', withoutArgument),
  UIDL: spec(transaction, 'forward', withoutArgument),
  RETR: spec(transaction, 'retrieve', always),
  TOP: spec(transaction, 'retrieve', always),
  DELE: spec(transaction, 'forward'),
  NOOP: spec(transaction, 'forward'),
  RSET: spec(transaction, 'forward'),
};

export type ParsedCommand =
  | { kind: 'command'; verb: string; argument: string; spec: CommandSpec; line: Buffer }
  | { kind: 'unknown'; verb: string }
  | { kind: 'invalid' };

/**
 * Keywords are 3 or 4 letters (RFC 1939 3), then one space and the argument. The argument
 * may hold any byte but controls (a password may contain spaces or UTF-8); it is relayed as
 * received.
 */
const COMMAND_LINE = /^([A-Za-z]{3,4})(?: ([^\x00-\x1f\x7f]*))?$/;

export function parseCommand(line: Buffer): ParsedCommand {
  const match = COMMAND_LINE.exec(line.toString('latin1'));
  if (match === null) return { kind: 'invalid' };
  const verb = (match[1] ?? '').toUpperCase();
  const known = COMMANDS[verb];
  if (known === undefined) return { kind: 'unknown', verb };
  return { kind: 'command', verb, argument: match[2] ?? '', spec: known, line };
}

export interface ProxyLogin {
  user: string;
  host: string;
  port: number | undefined;
}

/**
 * The classic proxy login `USER alice#pop.example.com[:port]` (P3Scan, Kerio):
 * the last `#` separates the upstream user from the upstream host, so a user name
 * may itself contain `#` or `@`.
 */
export function parseProxyLogin(argument: string): ProxyLogin | undefined {
  const hash = argument.lastIndexOf('#');
  if (hash <= 0) return undefined;
  const user = argument.slice(0, hash);
  const match = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/.exec(argument.slice(hash + 1));
  if (match === null) return undefined;
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { user, host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port };
}
