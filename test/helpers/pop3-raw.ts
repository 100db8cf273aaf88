/**
 * A raw POP3 transcript client for protocol tests: writes exact bytes and reads
 * status lines and multi-line responses exactly as they arrive on the wire.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

const TERMINATOR = Buffer.from('\r\n.\r\n', 'latin1');

export class RawPop3 {
  private buffer = Buffer.alloc(0);
  closed = false;
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  static async connect(port: number): Promise<RawPop3> {
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return new RawPop3(socket);
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** The next status line, without CRLF; "" when the connection closed first. */
  async line(timeoutMs = 10000): Promise<string> {
    const end = await this.until((buffer) => {
      const index = buffer.indexOf('\r\n');
      return index === -1 ? -1 : index + 2;
    }, timeoutMs);
    if (end === -1) return '';
    return this.take(end).toString('latin1').slice(0, -2);
  }

  /** A whole multi-line response as wire bytes: status line, stuffed body and the final dot line. */
  async multiline(timeoutMs = 10000): Promise<Buffer> {
    const end = await this.until((buffer) => {
      const first = buffer.indexOf('\r\n');
      if (first === -1) return -1;
      if (!buffer.subarray(0, 3).equals(Buffer.from('+OK'))) return first + 2;
      // The body may be empty: the dot line directly after the status line.
      if (buffer.subarray(first + 2, first + 5).toString('latin1') === '.\r\n') return first + 5;
      const index = buffer.indexOf(TERMINATOR, first);
      return index === -1 ? -1 : index + TERMINATOR.length;
    }, timeoutMs);
    return end === -1 ? this.take(this.buffer.length) : this.take(end);
  }

  /** A command and its single-line answer. */
  async command(line: string, timeoutMs?: number): Promise<string> {
    this.send(`${line}\r\n`);
    return this.line(timeoutMs);
  }

  async login(user: string, password: string): Promise<void> {
    const greeting = await this.line();
    if (!greeting.startsWith('+OK')) throw new Error(`greeting: ${greeting}`);
    for (const [command, expected] of [[`USER ${user}`, '+OK'], [`PASS ${password}`, '+OK']] as const) {
      const answer = await this.command(command);
      if (!answer.startsWith(expected)) throw new Error(`${command.split(' ')[0]}: ${answer}`);
    }
  }

  /** Resolves when the peer closed the connection (or after the timeout: false). */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    await this.until(() => -1, timeoutMs);
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Bytes received so far and not yet taken. */
  get pending(): Buffer {
    return this.buffer;
  }

  private take(end: number): Buffer {
    const taken = this.buffer.subarray(0, end);
    this.buffer = this.buffer.subarray(end);
    return taken;
  }

  private async until(found: (buffer: Buffer) => number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = found(this.buffer);
      if (end !== -1) return end;
      if (this.closed || Date.now() >= deadline) return -1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }
}
