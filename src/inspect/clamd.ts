/**
 * A clamd client (ClamAV's daemon protocol, clamd(8)): PING, VERSION and
 * zINSTREAM scanning over a UNIX socket or TCP, with a timeout per request.
 *
 * ClamdFailover tries a list of clamd addresses in order when one cannot be
 * reached or fails (never after a timeout: a slow scan is not started again
 * elsewhere, the failure policy decides).
 *
 * Our own client rather than the npm `clamscan` package: every clamd reply must
 * map to an explicit outcome, including the one clamd sends before closing the
 * stream early ("INSTREAM size limit exceeded"); limits and encryption heuristics
 * are never "clean".
 *
 * That early close races our writes: when a write fails first, Node closes the
 * socket before the reply waiting in it is read. So a stream that clamd ended
 * without a reply we could read is judged by asking clamd, on a new connection,
 * whether it is alive: a living clamd that hung up on a stream did so on purpose
 * (over StreamMaxLength: `limits`); one that does not answer failed (`error`).
 * The outcome does not depend on which event came first.
 */
import { connect, type Socket } from 'node:net';
import { writeAll } from '../wire/socket-write.js';

export type ClamdAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export type ScanOutcome =
  | { kind: 'clean' }
  | { kind: 'infected'; signature: string }
  | { kind: 'unscannable'; reason: 'encrypted' | 'limits' | 'timeout' | 'error'; detail: string };

/** zINSTREAM chunk size; clamd's StreamMaxLength bounds the total, not the chunk. */
const CHUNK_BYTES = 64 * 1024;
/** A clamd reply longer than this is not a reply. */
const MAX_REPLY_BYTES = 4096;

/** clamd closed an INSTREAM without a reply we could read. */
class StreamCutShort extends Error {}

export function parseClamdAddress(text: string): ClamdAddress | undefined {
  if (text.startsWith('unix:')) return { kind: 'unix', path: text.slice(5) };
  const tcp = /^tcp:\/\/(.+):(\d{1,5})$/.exec(text);
  if (tcp) return { kind: 'tcp', host: tcp[1] ?? '', port: Number(tcp[2]) };
  return undefined;
}

export const describeClamdAddress = (address: ClamdAddress): string => (address.kind === 'unix' ? `unix:${address.path}` : `tcp://${address.host}:${address.port}`);

/** Maps one zINSTREAM reply to an outcome (clamd(8): "stream: OK", "stream: <name> FOUND", "<text> ERROR"). */
export function outcomeOf(reply: string): ScanOutcome {
  const text = reply.replace(/\0$/, '').trim();
  if (/^stream: OK$/.test(text)) return { kind: 'clean' };
  const found = /^stream: (.+) FOUND$/.exec(text);
  if (found) {
    const signature = found[1] ?? '';
    if (signature.startsWith('Heuristics.Encrypted')) return { kind: 'unscannable', reason: 'encrypted', detail: signature };
    if (signature.startsWith('Heuristics.Limits.Exceeded')) return { kind: 'unscannable', reason: 'limits', detail: signature };
    return { kind: 'infected', signature };
  }
  if (/size limit exceeded/i.test(text)) return { kind: 'unscannable', reason: 'limits', detail: text };
  return { kind: 'unscannable', reason: 'error', detail: text || 'no reply from clamd' };
}

export class ClamdClient {
  constructor(
    readonly address: ClamdAddress,
    private readonly timeoutMs: number,
  ) {}

  async ping(): Promise<boolean> {
    return (await this.request(Buffer.from('zPING\0', 'latin1'))) === 'PONG';
  }

  /** "ClamAV 1.4.6/27500/Sun Nov 22 ..." : engine, signature version, signature date. */
  async version(): Promise<string> {
    return this.request(Buffer.from('zVERSION\0', 'latin1'));
  }

  /** Streams `data` to clamd; never throws: a failure is an `unscannable` outcome. */
  async scan(data: AsyncIterable<Buffer>): Promise<ScanOutcome> {
    try {
      return outcomeOf(await this.request(Buffer.from('zINSTREAM\0', 'latin1'), data));
    } catch (error) {
      const message = (error as Error).message;
      if (error instanceof StreamCutShort && (await this.ping().catch(() => false))) return { kind: 'unscannable', reason: 'limits', detail: `clamd closed the stream early (over its StreamMaxLength): ${message}` };
      return { kind: 'unscannable', reason: /timed out/.test(message) ? 'timeout' : 'error', detail: message };
    }
  }

  /** Sends a command (and, for INSTREAM, the chunks) and resolves with the NUL-terminated reply. */
  private request(command: Buffer, stream?: AsyncIterable<Buffer>): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket: Socket = this.address.kind === 'unix' ? connect({ path: this.address.path }) : connect({ host: this.address.host, port: this.address.port });
      let reply = Buffer.alloc(0);
      let settled = false;
      let streaming = false;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        const text = reply.toString('latin1').replace(/\0.*$/s, '').trim();
        if (text !== '') return resolve(text);
        const reason = error?.message ?? 'clamd closed the connection without a reply';
        reject(streaming && error?.message.startsWith('clamd timed out') !== true ? new StreamCutShort(reason) : new Error(reason));
      };
      const timer = setTimeout(() => finish(new Error(`clamd timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
      socket.on('data', (chunk: Buffer) => {
        reply = Buffer.concat([reply, chunk]).subarray(0, MAX_REPLY_BYTES);
        if (reply.includes(0)) finish();
      });
      // clamd may close early (size limit) and reset our writes: its reply, if any, still counts.
      socket.on('error', (error) => finish(error));
      socket.on('close', () => finish());
      socket.once('connect', () => {
        socket.write(command);
        if (stream === undefined) return;
        streaming = true;
        void this.sendChunks(socket, stream).catch(() => undefined);
      });
    });
  }

  private async sendChunks(socket: Socket, stream: AsyncIterable<Buffer>): Promise<void> {
    const header = (length: number): Buffer => {
      const size = Buffer.alloc(4);
      size.writeUInt32BE(length);
      return size;
    };
    for await (const data of stream) {
      for (let offset = 0; offset < data.length; offset += CHUNK_BYTES) {
        const piece = data.subarray(offset, offset + CHUNK_BYTES);
        if (socket.destroyed) return;
        // A close while waiting ends the stream: the reply (or its absence) decides the outcome.
        if (!(await writeAll(socket, [header(piece.length), piece]).then(() => true, () => false))) return;
      }
    }
    if (!socket.destroyed) socket.write(header(0));
  }
}

/** Several clamd addresses, tried in order when one fails (refused, reset, no reply, an ERROR reply). */
export class ClamdFailover {
  constructor(readonly clients: readonly ClamdClient[]) {
    if (clients.length === 0) throw new Error('ClamdFailover needs at least one clamd');
  }

  /** `open` is called once per attempt, so each clamd gets the whole data. */
  async scan(open: () => AsyncIterable<Buffer>): Promise<ScanOutcome> {
    let outcome: ScanOutcome = { kind: 'unscannable', reason: 'error', detail: 'no clamd' };
    for (const client of this.clients) {
      outcome = await client.scan(open());
      if (!(outcome.kind === 'unscannable' && outcome.reason === 'error')) return outcome;
    }
    return outcome;
  }
}
