/**
 * Trials for the fault suite: a raw-socket SMTP sender that records the one thing a
 * sender acts on (the reply to its dot, or none when the connection died), unique
 * messages with a trial id, and the tally that compares what each sender was told
 * with what the recording upstream committed:
 * - LOST: the sender saw 250 and the upstream has nothing;
 * - DUPLICATE-AFTER-250: the sender saw 250 and the upstream has it more than once;
 * - CORRUPTED: the upstream's bytes differ from what was sent;
 * - UNACKNOWLEDGED-DELIVERED: no 250, but delivered once (the sender retries: one
 *   duplicate, which SMTP allows when a reply is lost, RFC 5321 6.1).
 */
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface Trial {
  id: string;
  message: Buffer;
  /** The reply code to the dot, 0 when there was none (connection lost). */
  reply: number;
}

/** A seeded generator (mulberry32), so a failing run can be repeated with its seed. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/** A clean message of about `bytes` bytes, with lines that start with a dot (stuffing is exercised). */
export function trialMessage(id: string, bytes: number): Buffer {
  const lines = [`From: <sender@example.org>`, `To: <rcpt@example.net>`, `Subject: fault trial ${id}`, `X-Trial: ${id}`, '', ''];
  let size = lines.join('\r\n').length;
  for (let index = 0; size < bytes; index++) {
    const line = `${index % 17 === 0 ? '.' : ''}${randomBytes(57).toString('base64')}`;
    lines.splice(lines.length - 1, 0, line);
    size += line.length + 2;
  }
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

export const trialIdOf = (message: Buffer): string | undefined => /^X-Trial: (\S+)\r$/m.exec(message.subarray(0, 1024).toString('latin1'))?.[1];

const stuffed = (message: Buffer): Buffer => Buffer.from(message.toString('latin1').replace(/^\./gm, '..'), 'latin1');

/** Sends one message; resolves with the reply code to the dot (0: none). Never rejects. */
export function sendTrial(port: number, id: string, message: Buffer, guardMs = 120_000): Promise<Trial> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const steps = ['EHLO trial.example\r\n', 'MAIL FROM:<sender@example.org>\r\n', 'RCPT TO:<rcpt@example.net>\r\n', 'DATA\r\n'];
    let replies = 0;
    let reply = 0;
    let pending = '';
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      socket.destroy();
      resolve({ id, message, reply });
    };
    const guard = setTimeout(finish, guardMs);
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n'); end !== -1; end = pending.indexOf('\r\n')) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (line[3] === '-') continue;
        const code = Number(line.slice(0, 3));
        replies++;
        if (replies <= 4) {
          const expected = replies === 1 ? 220 : 250;
          if (code !== expected) return finish();
          socket.write(steps[replies - 1] as string);
        } else if (replies === 5) {
          if (code !== 354) return finish();
          socket.write(Buffer.concat([stuffed(message), Buffer.from('\r\n.\r\n')]));
        } else {
          reply = code;
          socket.end('QUIT\r\n');
          return finish();
        }
      }
    });
  });
}

export interface Tally {
  trials: number;
  acknowledged: number;
  lost: number;
  duplicateAfter250: number;
  /** Delivered more than once without a 250 (the proxy itself sent it twice). */
  duplicatedUnacknowledged: number;
  corrupted: number;
  unacknowledgedDelivered: number;
  tempfailed: number;
  noReply: number;
  unexpected: number;
}

export function tally(trials: readonly Trial[], delivered: readonly Buffer[]): Tally {
  const copies = new Map<string, Buffer[]>();
  let corrupted = 0;
  for (const message of delivered) {
    const id = trialIdOf(message);
    if (id === undefined) {
      corrupted++;
      continue;
    }
    copies.set(id, [...(copies.get(id) ?? []), message]);
  }
  const result: Tally = { trials: trials.length, acknowledged: 0, lost: 0, duplicateAfter250: 0, duplicatedUnacknowledged: 0, corrupted, unacknowledgedDelivered: 0, tempfailed: 0, noReply: 0, unexpected: 0 };
  for (const trial of trials) {
    // What was sent ends with CRLF before the dot; the recorder keeps every line with its CRLF.
    const sent = Buffer.concat([trial.message, Buffer.from('\r\n')]);
    const upstream = copies.get(trial.id) ?? [];
    result.corrupted += upstream.filter((copy) => !copy.equals(sent)).length;
    if (trial.reply === 250) {
      result.acknowledged++;
      if (upstream.length === 0) result.lost++;
      if (upstream.length > 1) result.duplicateAfter250++;
      continue;
    }
    if (trial.reply === 0) result.noReply++;
    else if (trial.reply >= 400 && trial.reply < 500) result.tempfailed++;
    else result.unexpected++;
    if (upstream.length === 1) result.unacknowledgedDelivered++;
    if (upstream.length > 1) result.duplicatedUnacknowledged++;
  }
  return result;
}
