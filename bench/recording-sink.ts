/**
 * A recording SMTP upstream for the fault suite (test/faults) and the soak (bench/soak.ts): it keeps the exact bytes of every
 * message (dot-unstuffed, CRLF kept) and counts a message as delivered only once it
 * has sent its 250 for it, as a real MTA commits a message when it answers the dot
 * (RFC 5321 4.1.1.4). It can misbehave on purpose: die after some bytes of DATA, die
 * after the dot before answering, or answer the dot after a delay (a window in which
 * a proxy killed mid-forwarding leaves nothing delivered).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface SinkBehaviour {
  /** Destroy the connection once this many bytes of DATA have arrived. */
  dieAfterDataBytes?: number;
  /** Destroy the connection after the dot instead of answering it. */
  dieAfterDot?: boolean;
  /** Answer the dot after this many milliseconds (chosen per message). */
  dotReplyDelayMs?: () => number;
}

export class RecordingSink {
  readonly delivered: Buffer[] = [];
  /** Connections that ended inside DATA or before the dot's reply: nothing delivered. */
  abandoned = 0;
  behaviour: SinkBehaviour = {};
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  /** Listens on an ephemeral loopback port; the caller closes it. */
  static async start(): Promise<RecordingSink> {
    const server = createServer();
    const sink = new RecordingSink(server);
    server.on('connection', (socket) => sink.serve(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return sink;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('220 recording sink ESMTP\r\n');
    let buffered: Buffer = Buffer.alloc(0);
    let inData = false;
    let dataBytes = 0;
    let lines: Buffer[] = [];
    const onLine = (line: Buffer): void => {
      if (inData) {
        dataBytes += line.length;
        if (this.behaviour.dieAfterDataBytes !== undefined && dataBytes > this.behaviour.dieAfterDataBytes) {
          this.abandoned++;
          socket.destroy();
          return;
        }
        if (line.toString('latin1') === '.\r\n') {
          inData = false;
          const message = Buffer.concat(lines);
          lines = [];
          return this.answerDot(socket, message);
        }
        lines.push(line[0] === 0x2e ? line.subarray(1) : line);
        return;
      }
      const verb = line.toString('latin1').slice(0, 4).toUpperCase();
      if (verb === 'EHLO') socket.write('250-recording sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n');
      else if (verb === 'DATA') {
        inData = true;
        dataBytes = 0;
        socket.write('354 go ahead\r\n');
      } else if (verb === 'QUIT') socket.end('221 bye\r\n');
      else socket.write('250 ok\r\n');
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      let start = 0;
      for (let end = buffered.indexOf(10, start); end !== -1 && !socket.destroyed; end = buffered.indexOf(10, start)) {
        onLine(buffered.subarray(start, end + 1));
        start = end + 1;
      }
      buffered = buffered.subarray(start);
    });
  }

  private answerDot(socket: Socket, message: Buffer): void {
    if (this.behaviour.dieAfterDot === true) {
      this.abandoned++;
      socket.destroy();
      return;
    }
    const answer = (): void => {
      if (socket.destroyed || !socket.writable) {
        this.abandoned++;
        return;
      }
      this.delivered.push(message);
      socket.write(`250 2.0.0 queued as ${this.delivered.length}\r\n`);
    };
    const delay = this.behaviour.dotReplyDelayMs?.() ?? 0;
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  }
}
