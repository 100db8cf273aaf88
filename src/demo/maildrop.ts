/**
 * The demo's POP3 upstream: a small maildrop server on loopback (RFC 1939:
 * USER/PASS, STAT, LIST, UIDL, RETR, TOP, DELE, NOOP, RSET, QUIT; RFC 2449 CAPA)
 * holding the sample messages in memory, as a mailbox stores them (CRLF lines).
 * One user, demo with password demo; one session holds the maildrop lock at a
 * time; DELE marks, and only QUIT in the TRANSACTION state removes (UPDATE).
 * Multi-line responses are dot-stuffed with the proxy's own DotStuffer.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { CLOSED, ReadTimeout, SocketReader } from '../wire/socket-reader.js';
import { PhaseTimer } from '../session/timers.js';
import { DotStuffer, END_OF_DATA } from '../wire/dot-codec.js';
import { writeAll } from '../wire/socket-write.js';

const USER = 'demo';
const PASSWORD = 'demo';
/** RFC 2449 4: a command line is at most 255 octets; a little slack for clients that exceed it. */
const MAX_LINE_BYTES = 512;
/** RFC 1939 3: the autologout timer is at least 10 minutes. */
const AUTOLOGOUT_SECONDS = 600;
const CRLF = Buffer.from('\r\n', 'latin1');
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');

interface StoredMessage {
  uid: string;
  content: Buffer;
}

/** What the sessions share: the messages, and the lock one logged-in session holds. */
interface Mailbox {
  messages: readonly StoredMessage[];
  locked: boolean;
}

interface Answer {
  pieces: Buffer[];
  quit?: boolean;
}

const line = (text: string): Buffer => Buffer.from(`${text}\r\n`, 'latin1');
const ok = (text = ''): Answer => ({ pieces: [line(text === '' ? '+OK' : `+OK ${text}`)] });
const err = (text: string): Answer => ({ pieces: [line(`-ERR ${text}`)] });

/** A positive status line, the body dot-stuffed (ending in CRLF), and the terminating dot line. */
function multiline(status: string, body: Buffer): Answer {
  const stuffer = new DotStuffer();
  const needsCrlf = body.length > 0 && !body.subarray(-2).equals(CRLF);
  return { pieces: [line(`+OK ${status}`), ...stuffer.stuff(body), ...stuffer.end(), ...(needsCrlf ? [CRLF] : []), END_OF_DATA] };
}

const listing = (lines: string[]): Buffer => Buffer.from(lines.map((entry) => `${entry}\r\n`).join(''), 'latin1');

/** TOP (RFC 1939 7): the header, the blank line after it, and the first `bodyLines` lines of the body. */
function topOf(content: Buffer, bodyLines: number): Buffer {
  const blank = content.subarray(0, 2).equals(CRLF) ? 0 : content.indexOf(HEADER_END);
  if (blank === -1) return content;
  let end = blank === 0 ? 2 : blank + HEADER_END.length;
  for (let taken = 0; taken < bodyLines && end < content.length; taken++) {
    const next = content.indexOf(CRLF, end);
    end = next === -1 ? content.length : next + CRLF.length;
  }
  return content.subarray(0, end);
}

export class Maildrop {
  private readonly mailbox: Mailbox;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server = createServer((socket) => void this.serve(socket));

  constructor(contents: readonly Buffer[]) {
    this.mailbox = { messages: contents.map((content, index) => ({ uid: `mailmoat-demo-${index + 1}`, content })), locked: false };
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve) => this.server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    return this.server.address() as AddressInfo;
  }

  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    return closed;
  }

  private async serve(socket: Socket): Promise<void> {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const reader = new SocketReader(socket, MAX_LINE_BYTES);
    const session = new MaildropSession(this.mailbox);
    const autologout = new PhaseTimer<'autologout'>(() => reader.interrupt(new ReadTimeout(AUTOLOGOUT_SECONDS)));
    try {
      await writeAll(socket, [line('+OK mailmoat demo maildrop ready')]);
      for (;;) {
        autologout.set('autologout', AUTOLOGOUT_SECONDS);
        const event = await reader.nextLine();
        autologout.clear();
        if (event === CLOSED) break;
        const answer = event.kind === 'line' ? session.answer(event.line.toString('latin1')) : err('line too long');
        await writeAll(socket, answer.pieces);
        if (answer.quit === true) break;
      }
      socket.end();
    } catch {
      // Autologout (RFC 1939 3: no UPDATE), or the client is gone.
      socket.destroy();
    } finally {
      autologout.clear();
      session.release();
    }
  }
}

/** One connection's state: AUTHORIZATION until USER/PASS succeed, then TRANSACTION on a snapshot of the maildrop. */
class MaildropSession {
  private state: 'authorization' | 'transaction' = 'authorization';
  private user: string | undefined;
  private snapshot: readonly StoredMessage[] = [];
  private readonly deleted = new Set<number>();
  private holdsLock = false;

  constructor(private readonly mailbox: Mailbox) {}

  /** The connection ended: the lock goes, whatever was marked stays (no UPDATE without QUIT). */
  release(): void {
    if (this.holdsLock) this.mailbox.locked = false;
    this.holdsLock = false;
  }

  answer(text: string): Answer {
    const match = /^([A-Za-z]{3,4})(?: (.*))?$/.exec(text);
    if (match === null) return err('invalid command line');
    const verb = (match[1] ?? '').toUpperCase();
    const argument = match[2] ?? '';
    if (verb === 'CAPA') return multiline('Capability list follows', listing(['USER', 'TOP', 'UIDL']));
    if (verb === 'QUIT') return this.quit();
    return this.state === 'authorization' ? this.authorization(verb, argument) : this.transaction(verb, argument);
  }

  private authorization(verb: string, argument: string): Answer {
    if (verb === 'USER') {
      if (argument === '') return err('USER needs a name');
      this.user = argument;
      return ok('send PASS');
    }
    if (verb !== 'PASS') return err('command not valid before login');
    if (this.user === undefined) return err('send USER first');
    const valid = this.user === USER && argument === PASSWORD;
    this.user = undefined;
    if (!valid) return err('invalid user name or password');
    if (this.mailbox.locked) return err('maildrop already locked');
    this.mailbox.locked = this.holdsLock = true;
    this.snapshot = this.mailbox.messages;
    this.state = 'transaction';
    return ok(`maildrop has ${this.summary()}`);
  }

  private transaction(verb: string, argument: string): Answer {
    const args = argument === '' ? [] : argument.split(' ');
    switch (verb) {
      case 'STAT':
        return args.length > 0 ? err('STAT takes no argument') : ok(`${this.live().length} ${this.octets()}`);
      case 'LIST':
      case 'UIDL': {
        const describe = (number: number, message: StoredMessage): string => `${number} ${verb === 'LIST' ? message.content.length : message.uid}`;
        if (args.length > 1) return err(`${verb} takes at most one argument`);
        if (args.length === 1) {
          const number = this.messageNumber(args[0]);
          const message = number === undefined ? undefined : this.snapshot[number - 1];
          return number === undefined || message === undefined ? err('no such message') : ok(describe(number, message));
        }
        const entries = this.live().map(([number, message]) => describe(number, message));
        return multiline(verb === 'LIST' ? this.summary() : 'unique-id listing follows', listing(entries));
      }
      case 'RETR': {
        const message = args.length === 1 ? this.message(args[0]) : undefined;
        return message === undefined ? err('no such message') : multiline(`${message.content.length} octets`, message.content);
      }
      case 'TOP': {
        const message = args.length === 2 ? this.message(args[0]) : undefined;
        const bodyLines = /^\d+$/.test(args[1] ?? '') ? Number(args[1]) : undefined;
        if (message === undefined || bodyLines === undefined) return err('usage: TOP message lines');
        return multiline('top of message follows', topOf(message.content, bodyLines));
      }
      case 'DELE': {
        const number = args.length === 1 ? this.messageNumber(args[0]) : undefined;
        if (number === undefined) return err('no such message');
        this.deleted.add(number);
        return ok(`message ${number} deleted`);
      }
      case 'NOOP':
        return ok();
      case 'RSET':
        this.deleted.clear();
        return ok(`maildrop has ${this.summary()}`);
      default:
        return err('unknown command');
    }
  }

  /** QUIT: in TRANSACTION the marked messages are removed (UPDATE), then the connection ends. */
  private quit(): Answer {
    if (this.state === 'authorization') return { ...ok('mailmoat demo maildrop signing off'), quit: true };
    this.mailbox.messages = this.live().map(([, message]) => message);
    this.release();
    return { ...ok(`mailmoat demo maildrop signing off, ${this.summary()} left`), quit: true };
  }

  /** The messages not marked as deleted, with their numbers in this session. */
  private live(): [number, StoredMessage][] {
    return this.snapshot.flatMap((message, index): [number, StoredMessage][] => (this.deleted.has(index + 1) ? [] : [[index + 1, message]]));
  }

  private octets(): number {
    return this.live().reduce((total, [, message]) => total + message.content.length, 0);
  }

  private summary(): string {
    const count = this.live().length;
    return `${count} message${count === 1 ? '' : 's'} (${this.octets()} octets)`;
  }

  /** A message number that exists in this session and is not marked as deleted. */
  private messageNumber(text: string | undefined): number | undefined {
    if (text === undefined || !/^\d{1,9}$/.test(text)) return undefined;
    const number = Number(text);
    return number >= 1 && number <= this.snapshot.length && !this.deleted.has(number) ? number : undefined;
  }

  private message(text: string | undefined): StoredMessage | undefined {
    const number = this.messageNumber(text);
    return number === undefined ? undefined : this.snapshot[number - 1];
  }
}
