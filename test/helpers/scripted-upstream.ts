/**
 * A scripted SMTP upstream for the cases a real server will not produce on
 * request: stalls, resets, odd replies, and raw byte capture (a real server does
 * not expose the exact wire bytes it received, which the smuggling tests need).
 * Its end-of-data rule is written independently of src/ (a plain search for
 * CRLF.CRLF) so it cannot share a bug with the code under test.
 */
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import type { Test } from 'tap';

export type ScriptAnswer = string | 'stall' | 'close' | undefined;

export interface UpstreamScript {
  /** Greeting line; null: never greet. */
  greeting?: string | null;
  ehlo?: string[];
  /** Overrides the default reply to a command (return undefined for the default). */
  answer?: (verb: string, line: string) => ScriptAnswer;
  /** Reply to the final dot. */
  final?: (wire: Buffer) => ScriptAnswer;
  /** What to do on DATA instead of 354; any 3yz starts the payload, as the class decides (RFC 5321 4.2.1). */
  data?: () => ScriptAnswer;
}

export interface UpstreamSession {
  commands: string[];
  /** Raw bytes of each DATA payload as received, final dot excluded. */
  payloads: Buffer[];
  /** Everything received on this connection. */
  raw: Buffer;
  closed: boolean;
}

const DEFAULT_EHLO = ['upstream.test', 'PIPELINING', 'SIZE 10240000', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SMTPUTF8', 'DSN', 'AUTH PLAIN LOGIN', 'STARTTLS', 'CHUNKING', 'BINARYMIME', 'XCLIENT NAME ADDR', 'XFORWARD NAME ADDR', 'ETRN'];

const multiline = (code: number, lines: string[]): string => lines.map((line, index) => `${code}${index === lines.length - 1 ? ' ' : '-'}${line}`).join('\r\n');

export class ScriptedUpstream {
  readonly sessions: UpstreamSession[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly script: UpstreamScript = {}) {
    this.server = createServer((socket) => this.serve(socket));
  }

  static async start(t: Test, script: UpstreamScript = {}): Promise<ScriptedUpstream> {
    const upstream = new ScriptedUpstream(script);
    await new Promise<void>((resolve) => upstream.server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    upstream.port = (upstream.server.address() as AddressInfo).port;
    t.teardown(() => upstream.close());
    return upstream;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** All payloads received on all connections. */
  get payloads(): Buffer[] {
    return this.sessions.flatMap((session) => session.payloads);
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const session: UpstreamSession = { commands: [], payloads: [], raw: Buffer.alloc(0), closed: false };
    this.sessions.push(session);
    let pending = Buffer.alloc(0);
    let inData = false;
    let stalled = false;
    const say = (answer: ScriptAnswer, fallback: string): void => {
      const text = answer ?? fallback;
      if (text === 'stall') stalled = true;
      else if (text === 'close') socket.destroy();
      else socket.write(`${text}\r\n`);
    };
    socket.on('data', (chunk: Buffer) => {
      session.raw = Buffer.concat([session.raw, chunk]);
      if (stalled) return;
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (inData) {
          const end = pending.subarray(0, 3).equals(Buffer.from('.\r\n')) ? 0 : pending.indexOf('\r\n.\r\n');
          if (end === -1) return;
          const payloadEnd = end === 0 ? 0 : end + 2;
          session.payloads.push(Buffer.from(pending.subarray(0, payloadEnd)));
          pending = pending.subarray(payloadEnd + 3);
          inData = false;
          say(this.script.final?.(session.payloads.at(-1) ?? Buffer.alloc(0)), '250 2.0.0 Ok: queued');
          if (stalled) return;
          continue;
        }
        const lf = pending.indexOf('\n');
        if (lf === -1) return;
        const line = pending.subarray(0, lf).toString('latin1').replace(/\r$/, '');
        pending = pending.subarray(lf + 1);
        session.commands.push(line);
        const verb = line.split(' ', 1)[0]?.toUpperCase() ?? '';
        const scripted = this.script.answer?.(verb, line);
        if (scripted !== undefined) {
          say(scripted, '');
          if (stalled) return;
          continue;
        }
        switch (verb) {
          case 'EHLO':
            say(undefined, multiline(250, this.script.ehlo ?? DEFAULT_EHLO));
            break;
          case 'HELO':
            say(undefined, '250 upstream.test');
            break;
          case 'MAIL':
            say(undefined, '250 2.1.0 Ok');
            break;
          case 'RCPT':
            say(undefined, line.toLowerCase().includes('unknown') ? '550 5.1.1 Recipient unknown' : '250 2.1.5 Ok');
            break;
          case 'DATA': {
            const answer = this.script.data?.();
            say(answer, '354 End data with <CR><LF>.<CR><LF>');
            if (answer === undefined || /^3\d\d/.test(answer)) inData = true;
            break;
          }
          case 'QUIT':
            socket.end('221 2.0.0 Bye\r\n');
            return;
          case 'RSET':
          case 'NOOP':
            say(undefined, '250 2.0.0 Ok');
            break;
          default:
            say(undefined, '502 5.5.2 Error: command not recognized');
        }
        if (stalled) return;
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      session.closed = true;
      this.sockets.delete(socket);
    });
    if (this.script.greeting !== null) socket.write(`${this.script.greeting ?? '220 upstream.test ESMTP scripted'}\r\n`);
  }
}
