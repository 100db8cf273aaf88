/**
 * The connections one address opened within a sliding window (the per-minute rate of
 * limits.max_connections_per_address_per_minute): the times in arrival order, with the
 * expired ones dropped from the front. Counting costs O(1) amortized, however many
 * connections the window holds (one address's flood is when the limit matters, so the
 * check must not cost more per connection as the flood grows).
 *
 * Invariant: `times[head..]` are the times still inside the window, oldest first (times
 * are added in order: `now()` does not go back within a process's admission clock).
 */

export class SlidingCount {
  private times: number[] = [];
  private head = 0;

  constructor(private readonly windowMs: number) {}

  /** How many of the counted times are within the window ending at `now`. */
  count(now: number): number {
    const { times } = this;
    while (this.head < times.length && now - (times[this.head] as number) >= this.windowMs) this.head++;
    // Expired entries are compacted once they are half the array: each is moved at most once.
    if (this.head > 32 && this.head * 2 > times.length) {
      this.times = times.slice(this.head);
      this.head = 0;
    }
    return this.times.length - this.head;
  }

  add(now: number): void {
    this.times.push(now);
  }

  /** True when nothing counted is within the window ending at `now` (the address can be forgotten). */
  expired(now: number): boolean {
    return this.count(now) === 0;
  }
}
