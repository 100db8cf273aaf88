/**
 * Keeps a POP3 client from timing out while a RETR/TOP response is captured and
 * inspected (a slow upstream, a large message, a slow virus scanner).
 *
 * Design: nothing is sent while the answer can still be "-ERR [SYS/TEMP]". Once
 * `afterSeconds` pass without a verdict, the response is committed: "+OK" is sent
 * (without an octet count, which is not known yet), followed every `afterSeconds`
 * by one trace header line (`X-Mailmoat-Scan: still inspecting, N s`) that lands
 * on top of the message's own headers. Clients reset their read timers on every
 * line. If inspection then fails, the only safe ending left is to cut the
 * connection without the final dot: the client sees an incomplete RETR, keeps
 * nothing, and the upstream (which gets no QUIT) deletes nothing (RFC 1939 6).
 * P3Scan trickles the message itself instead, which commits it before the scan.
 * Every line goes through the retrieval's StuffedWriter, which refuses it once the
 * message itself streams: a trace line can never land inside the message body.
 */
import type { StuffedWriter } from '../../wire/stuffed-writer.js';
import { ok } from './responses.js';

export class RetrievalKeepalive {
  private timer: NodeJS.Timeout | undefined;
  private elapsedSeconds = 0;
  /** True once "+OK" has been sent: the response can no longer become -ERR. */
  committed = false;

  constructor(
    readonly writer: StuffedWriter,
    private readonly afterSeconds: number,
  ) {
    this.timer = setInterval(() => this.tick(), afterSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    this.elapsedSeconds += this.afterSeconds;
    // A client that does not read is not kept alive at the cost of memory: the writer skips the tick.
    if (!this.committed) {
      if (!this.writer.keepalive(ok('message follows; mailmoat is still inspecting it'))) return;
      this.committed = true;
    }
    this.writer.keepalive(Buffer.from(`X-Mailmoat-Scan: still inspecting, ${this.elapsedSeconds} s\r\n`, 'latin1'));
  }
}
