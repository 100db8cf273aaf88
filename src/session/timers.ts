/**
 * One deadline slot per connection leg, in the style of undici's client-h1: a typed
 * deadline is set, replaced or restarted in one place (set), and one handler learns
 * which deadline passed. RFC 5321 4.5.3.2 names the SMTP ones (greeting, command,
 * DATA block, final reply); RFC 1939 3 the POP3 autologout.
 *
 * Invariants: at most one deadline per slot is armed; a deadline that was replaced or
 * cleared never fires; what restarts a deadline is decided by the caller's single
 * arming function, never by each socket event on its own (a trickle cannot extend
 * a deadline unless that function says so).
 */

export class PhaseTimer<Kind extends string> {
  private timer: NodeJS.Timeout | undefined;
  private armed: { kind: Kind; ms: number } | undefined;

  constructor(private readonly onTimeout: (kind: Kind) => void) {}

  /** The deadline armed now, if any. */
  get kind(): Kind | undefined {
    return this.armed?.kind;
  }

  /** Arms `kind` to pass `seconds` from now, replacing whatever was armed (the same deadline is restarted). */
  set(kind: Kind, seconds: number): void {
    const ms = seconds * 1000;
    if (this.timer !== undefined && this.armed?.kind === kind && this.armed.ms === ms) {
      this.timer.refresh();
      return;
    }
    this.clear();
    this.armed = { kind, ms };
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.armed = undefined;
      this.onTimeout(kind);
    }, ms);
    this.timer.unref();
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armed = undefined;
  }
}
