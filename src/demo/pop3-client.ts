/**
 * The demo's mail reader: a minimal POP3 client (RFC 1939) that logs in with
 * USER/PASS, counts the messages with STAT and retrieves them with RETR. A
 * retrieved message is unstuffed with the proxy's DataDecoder (which also ends
 * it at CRLF.CRLF only), so the demo compares the bytes a mailbox would store.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { CLOSED, ReadTimeout, SocketReader } from '../wire/socket-reader.js';
import { PhaseTimer } from '../session/timers.js';
import { DataDecoder } from '../wire/dot-codec.js';
import { writeAll } from '../wire/socket-write.js';

/** Long enough for the proxy to inspect (and scan) a message before it answers. */
const RESPONSE_SECONDS = 60;
const MAX_LINE_BYTES = 4096;

export type Retrieval = { ok: true; content: Buffer } | { ok: false; response: string };

export class Pop3Client {
  /** Each status line, and each chunk of a multi-line response, must come within RESPONSE_SECONDS. */
  private readonly deadline = new PhaseTimer<'response'>(() => this.reader.interrupt(new ReadTimeout(RESPONSE_SECONDS)));

  private constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
  ) {}

  /** Connects and reads the greeting; rejects unless it is +OK. */
  static async connect(port: number): Promise<Pop3Client> {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    await once(socket, 'connect');
    const client = new Pop3Client(socket, new SocketReader(socket, MAX_LINE_BYTES));
    try {
      client.expectOk('greeting', await client.statusLine());
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  async login(user: string, password: string): Promise<void> {
    this.expectOk('USER', await this.command(`USER ${user}`));
    this.expectOk('PASS', await this.command(`PASS ${password}`));
  }

  /** STAT: the number of messages in the maildrop. */
  async count(): Promise<number> {
    const status = await this.command('STAT');
    this.expectOk('STAT', status);
    return Number(status.split(' ')[1] ?? 'NaN');
  }

  /** RETR n: the message as the mailbox stores it, or the -ERR line. */
  async retrieve(number: number): Promise<Retrieval> {
    const status = await this.command(`RETR ${number}`);
    if (!status.startsWith('+OK')) return { ok: false, response: status };
    return { ok: true, content: await this.multiline() };
  }

  async quit(): Promise<void> {
    this.expectOk('QUIT', await this.command('QUIT'));
  }

  close(): void {
    this.socket.destroy();
  }

  private async command(line: string): Promise<string> {
    await writeAll(this.socket, [Buffer.from(`${line}\r\n`, 'latin1')]);
    return this.statusLine();
  }

  private async statusLine(): Promise<string> {
    const event = await this.within(() => this.reader.nextLine());
    if (event === CLOSED) throw new Error('the POP3 server closed the connection');
    if (event.kind === 'overflow') throw new Error('the POP3 server sent an over-long line');
    return event.line.toString('latin1');
  }

  private expectOk(what: string, status: string): void {
    if (!status.startsWith('+OK')) throw new Error(`${what}: ${status}`);
  }

  /** The body of a multi-line response, unstuffed, up to (not including) the terminating dot line. */
  private async multiline(): Promise<Buffer> {
    const decoder = new DataDecoder();
    const content: Buffer[] = [];
    for (;;) {
      const chunk = await this.within(() => this.reader.nextChunk());
      if (chunk === CLOSED) throw new Error('the POP3 server closed the connection inside a multi-line response');
      const decoded = decoder.decode(chunk);
      content.push(...decoded.content);
      if (decoded.ended) {
        this.reader.unread(decoded.rest);
        return Buffer.concat(content);
      }
    }
  }

  private async within<T>(read: () => Promise<T>): Promise<T> {
    this.deadline.set('response', RESPONSE_SECONDS);
    try {
      return await read();
    } finally {
      this.deadline.clear();
    }
  }
}
