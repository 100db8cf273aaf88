/**
 * The demo's sender: a minimal SMTP client that runs one transaction and reports
 * the reply to the end of data. The payload is sent as given (already stuffed),
 * so the demo can also show what the proxy does with a malformed one.
 */
import { connect } from 'node:net';
import { once } from 'node:events';
import type { Reply } from '../errors.js';
import { LineReader } from '../wire/line-reader.js';
import { ReplyParser } from '../session/smtp/replies.js';

export interface Envelope {
  sender: string;
  recipients: string[];
}

export async function sendOnce(port: number, envelope: Envelope, wirePayload: Buffer): Promise<Reply> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const lines = new LineReader(4096);
  const parser = new ReplyParser();
  const replies: Reply[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    lines.push(chunk);
    for (let event = lines.next(); event !== null; event = lines.next()) {
      if (event.kind !== 'line') continue;
      const parsed = parser.feed(event.line);
      if (parsed !== null && !(parsed instanceof Error)) replies.push(parsed);
    }
    wake?.();
  });
  const closed = once(socket, 'close');
  const next = async (): Promise<Reply> => {
    while (replies.length === 0) {
      const woken = new Promise<void>((resolve) => (wake = resolve));
      const ended = await Promise.race([woken.then(() => false), closed.then(() => true)]);
      if (ended && replies.length === 0) throw new Error('connection closed before a reply');
    }
    return replies.shift() as Reply;
  };
  const command = async (line: string): Promise<Reply> => {
    socket.write(`${line}\r\n`);
    return next();
  };
  try {
    await next();
    await command('EHLO demo.client');
    await command(`MAIL FROM:<${envelope.sender}>`);
    for (const recipient of envelope.recipients) await command(`RCPT TO:<${recipient}>`);
    const start = await command('DATA');
    if (start.code !== 354) return start;
    socket.write(wirePayload);
    const final = await next();
    await command('QUIT').catch(() => undefined);
    return final;
  } finally {
    socket.destroy();
  }
}
