/**
 * A raw SMTP transcript client for protocol tests: writes exact bytes, collects
 * parsed replies, and reports when the proxy closes the connection.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Reply } from '../../src/errors.js';
import { LineReader } from '../../src/wire/line-reader.js';
import { ReplyParser } from '../../src/session/smtp/replies.js';

export const TRANSACTION_START = 'EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n';

export class RawClient {
  readonly replies: Reply[] = [];
  readonly raw: Buffer[] = [];
  closed = false;
  private readonly lines = new LineReader(65536);
  private readonly parser = new ReplyParser();
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.raw.push(chunk);
      this.lines.push(chunk);
      for (let event = this.lines.next(); event !== null; event = this.lines.next()) {
        if (event.kind !== 'line') continue;
        const parsed = this.parser.feed(event.line);
        if (parsed instanceof Error) throw parsed;
        if (parsed !== null) this.replies.push(parsed);
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    const onGone = (): void => {
      this.closed = true;
      this.wake();
    };
    socket.on('end', onGone);
    socket.on('close', onGone);
  }

  /** `localAddress`: another loopback address to come from (127.0.0.2 ...), for tests about the client's address. */
  static async connect(port: number, localAddress?: string): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true, ...(localAddress === undefined ? {} : { localAddress }) });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  /** A client over a socket already open: a TLS socket the test put over a connection after STARTTLS. */
  static over(socket: Socket): RawClient {
    return new RawClient(socket);
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Waits until `count` replies have arrived in total (or the connection closed, or the time ran out). */
  async waitForReplies(count: number, timeoutMs = 10000): Promise<Reply[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < count && !this.closed && Date.now() < deadline) {
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), sleep(Math.max(1, deadline - Date.now()), undefined, { ref: false })]);
    }
    return this.replies;
  }

  async waitForClose(timeoutMs = 10000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), sleep(Math.max(1, deadline - Date.now()), undefined, { ref: false })]);
    }
    return this.closed;
  }

  send(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Sends one command line and returns its reply. */
  async command(line: string): Promise<Reply> {
    const before = this.replies.length;
    this.send(`${line}\r\n`);
    const replies = await this.waitForReplies(before + 1);
    const reply = replies[before];
    if (reply === undefined) throw new Error(`no reply to ${line.slice(0, 40)}`);
    return reply;
  }

  /** Connects and waits for the greeting. */
  static async greeted(port: number, localAddress?: string): Promise<RawClient> {
    const client = await RawClient.connect(port, localAddress);
    await client.waitForReplies(1);
    return client;
  }

  /** Connects, reads the greeting, and pipelines EHLO, MAIL, RCPT and DATA (five replies in all). */
  static async openTransaction(port: number): Promise<RawClient> {
    const client = await RawClient.greeted(port);
    client.send(TRANSACTION_START);
    await client.waitForReplies(5);
    return client;
  }

  codes(): number[] {
    return this.replies.map((reply) => reply.code);
  }

  close(): void {
    this.socket.destroy();
  }
}
