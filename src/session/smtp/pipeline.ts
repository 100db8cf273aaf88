/**
 * The two FIFOs that make pipelining (RFC 2920) correct through a proxy.
 *
 * UpstreamWaits: the upstream answers commands strictly in the order they were
 * sent (RFC 2920 3.1), so each reply settles the oldest wait. A wait names the
 * timeout that applies while it is oldest (greeting, command, final reply).
 *
 * ReplySlots: the downstream must get its replies in the order of its commands,
 * whether a reply comes from the upstream or from the proxy itself (a refused
 * BDAT behind three relayed RCPTs waits its turn). A slot is either filled later
 * (`reply`), or computed when it reaches the head (`compute`: DATA's reply
 * depends on every earlier reply). `after` runs once its reply was written.
 */
import type { Reply, ProxyError } from '../../errors.js';

export type WaitKind = 'greeting' | 'command' | 'final';

export interface UpstreamWait {
  kind: WaitKind;
  onReply(reply: Reply): void;
  onLost(error: ProxyError): void;
}

export class UpstreamWaits {
  private readonly waits: UpstreamWait[] = [];

  push(wait: UpstreamWait): void {
    this.waits.push(wait);
  }

  /** Settles the oldest wait; false when no reply was expected. */
  settle(reply: Reply): boolean {
    const wait = this.waits.shift();
    if (wait === undefined) return false;
    wait.onReply(reply);
    return true;
  }

  /** Fails every wait; the error is only built when a wait exists (an Error captures a stack). */
  failAll(error: () => ProxyError): void {
    if (this.waits.length === 0) return;
    const failure = error();
    for (const wait of this.waits.splice(0)) wait.onLost(failure);
  }

  get head(): UpstreamWait | undefined {
    return this.waits[0];
  }

  get length(): number {
    return this.waits.length;
  }
}

export interface ReplySlot {
  reply?: Reply;
  compute?: () => Reply;
  /** Runs once the reply was written, with that reply. */
  after?: (written: Reply) => void;
}

export class ReplySlots {
  private readonly slots: ReplySlot[] = [];

  add(slot: ReplySlot): ReplySlot {
    this.slots.push(slot);
    return slot;
  }

  /** Writes every reply that is due, in order, and runs each slot's `after`. */
  flush(write: (reply: Reply) => void): void {
    for (;;) {
      const head = this.slots[0];
      if (head === undefined) return;
      const reply = head.reply ?? head.compute?.();
      if (reply === undefined) return;
      this.slots.shift();
      write(reply);
      head.after?.(reply);
    }
  }

  get length(): number {
    return this.slots.length;
  }
}
