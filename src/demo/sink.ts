/**
 * The demo's upstream: a small recording SMTP server on loopback (RFC 5321
 * subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT). It reads DATA with the
 * same decoder as the proxy and keeps each accepted message for the demo's table.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { LineReader } from '../wire/line-reader.js';
import { DataDecoder } from '../wire/dot-codec.js';

export interface ReceivedMessage {
  sender: string;
  recipients: string[];
  content: Buffer;
}

const MAX_LINE_BYTES = 4096;

export class RecordingSink {
  readonly received: ReceivedMessage[] = [];
  private readonly server: Server = createServer((socket) => this.serve(socket));

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve) => this.server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    return this.server.address() as AddressInfo;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    const lines = new LineReader(MAX_LINE_BYTES);
    let sender = '';
    let recipients: string[] = [];
    let data: { decoder: DataDecoder; chunks: Buffer[] } | undefined;
    const say = (text: string): void => {
      socket.write(`${text}\r\n`);
    };
    const onBytes = (chunk: Buffer): void => {
      if (data !== undefined) {
        const decoded = data.decoder.decode(chunk);
        data.chunks.push(...decoded.content);
        if (!decoded.ended) return;
        this.received.push({ sender, recipients, content: Buffer.concat(data.chunks) });
        say(`250 2.0.0 Ok: queued as DEMO${this.received.length}`);
        data = undefined;
        recipients = [];
        chunk = decoded.rest;
      }
      lines.push(chunk);
      for (let event = lines.next(); event !== null && data === undefined; event = lines.next()) {
        if (event.kind === 'overflow') {
          say('500 5.5.2 Line too long');
          continue;
        }
        const text = event.line.toString('latin1');
        const verb = text.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') say('250-sink.demo\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES');
        else if (verb === 'HELO') say('250 sink.demo');
        else if (verb === 'MAIL') {
          sender = text.slice(10).trim();
          recipients = [];
          say('250 2.1.0 Ok');
        } else if (verb === 'RCPT') {
          recipients.push(text.slice(8).trim());
          say('250 2.1.5 Ok');
        } else if (verb === 'DATA') {
          say('354 End data with <CR><LF>.<CR><LF>');
          data = { decoder: new DataDecoder(), chunks: [] };
          const rest = lines.takeRest();
          if (rest.length > 0) onBytes(rest);
          return;
        } else if (verb === 'RSET' || verb === 'NOOP') say('250 2.0.0 Ok');
        else if (verb === 'QUIT') {
          socket.end('221 2.0.0 Bye\r\n');
          return;
        } else say('502 5.5.2 Error: command not recognized');
      }
    };
    socket.on('data', onBytes);
    socket.on('error', () => socket.destroy());
    say('220 sink.demo ESMTP recording sink');
  }
}
