/**
 * Administrator alerts (Kerio's alerts, Mailtraq's "route to this address"): when a
 * virus or an executable is found, a notice goes to `alerts.to` by SMTP through the
 * configured upstream, with a summary of each message and its quarantine id.
 *
 * An outbreak must not flood the administrator: events are batched (one notice per
 * `alerts.batch_seconds` at most) and notices are rate-limited (`alerts.max_per_hour`);
 * what is held back is counted and reported in the next notice. Optionally the
 * recipients of a stripped message, or its sender, get a short notice too (off by
 * default; the sender never for a virus: virus senders are forged, and a notice
 * would be backscatter).
 *
 * In a fleet (`state.backend: redis://…`, state/alerts.ts) the batch and the hourly
 * cap are the fleet's: one notice per batch for every node's events, each event in
 * one notice. With the backend down, this node batches and counts alone. Time comes
 * from a clock collaborator (real timers by default; tests drive their own).
 */
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Logger } from '../observe/log.js';
import type { FlaggedMessage } from '../quarantine/store.js';
import { submitMessage, type ReleaseTarget } from '../quarantine/release.js';
import type { SharedAlerts } from '../state/alerts.js';

/** Findings that raise an alert: a virus, an executable found by name or by content, Office macros or an embedded package. */
const ALERTING_KINDS: ReadonlySet<string> = new Set(['virus', 'executable', 'executable-content', 'double-extension', 'hidden-extension', 'clsid', 'bidi-control', 'office-macros', 'office-embedded']);
/** At most this many events are listed one by one in a notice; the rest are counted. */
const MAX_LISTED_EVENTS = 50;
const HOUR_MS = 3_600_000;
/** Events of a fleet's batch whose sender crashed are dropped from Redis after this long. */
const FLEET_PENDING_TTL_MS = 24 * HOUR_MS;

/** The notifier's time: the current time and a cancellable timer. */
export interface AlertClock {
  now(): number;
  /** Runs `run` after `ms` (a test's clock may wait for what it returns); returns the cancel function. */
  schedule(run: () => Promise<void>, ms: number): () => void;
}

export const realClock: AlertClock = {
  now: () => Date.now(),
  schedule: (run, ms) => {
    const timer = setTimeout(() => void run(), ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export interface AlertPolicy {
  to: readonly string[];
  from: string;
  batchSeconds: number;
  maxPerHour: number;
  notifyRecipients: boolean;
  notifySender: boolean;
}

export class AlertNotifier {
  private pending: FlaggedMessage[] = [];
  private heldBack = 0;
  private cancelTimer: (() => void) | undefined;
  private sentAt: number[] = [];
  private sending: Promise<void> = Promise.resolve();
  /** Events on their way into the fleet's batch (a flush waits for them). */
  private adding: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly policy: AlertPolicy,
    private readonly target: ReleaseTarget,
    private readonly logger: Logger,
    private readonly clock: AlertClock = realClock,
    private readonly fleet: SharedAlerts | undefined = undefined,
  ) {}

  /** Called for every message with findings; only viruses and executables alert. */
  report(message: FlaggedMessage): void {
    if (!message.findings.some((finding) => ALERTING_KINDS.has(finding.kind))) return;
    if (this.policy.to.length > 0) {
      const batchMs = this.policy.batchSeconds * 1000;
      if (this.fleet?.available === true) {
        const added = this.fleet.add(message, batchMs, FLEET_PENDING_TTL_MS).then(
          (opened) => {
            if (opened) this.schedule();
          },
          () => this.addHere(message),
        );
        this.adding = Promise.all([this.adding, added]);
      } else {
        this.addHere(message);
      }
    }
    this.notifyParties(message);
  }

  /** Sends what is pending now (also at shutdown; in a fleet, every node's pending events); resolves when the notices went out. */
  async flush(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.adding;
    const fromFleet = this.fleet?.available === true ? await this.fleet.take().catch(() => []) : [];
    const events = [...fromFleet, ...this.pending];
    this.pending = [];
    if (events.length === 0) return this.sending;
    if (!(await this.allowed())) {
      await this.holdBack(events.length);
      return this.sending;
    }
    const heldBack = this.heldBack + (this.fleet?.available === true ? await this.fleet.takeHeld().catch(() => 0) : 0);
    this.heldBack = 0;
    const notice = this.compose(events, heldBack);
    this.sending = this.sending.then(() => this.send([...this.policy.to], notice.subject, notice.text));
    return this.sending;
  }

  private addHere(message: FlaggedMessage): void {
    this.pending.push(message);
    this.schedule();
  }

  private schedule(): void {
    this.cancelTimer ??= this.clock.schedule(() => this.flush(), this.policy.batchSeconds * 1000);
  }

  private async holdBack(events: number): Promise<void> {
    const shared = this.fleet?.available === true ? await this.fleet.holdBack(events).then(() => true, () => false) : false;
    if (!shared) this.heldBack += events;
    this.logger.warn({ events, heldBack: shared ? undefined : this.heldBack }, 'alert rate limit reached: events held back until the next notice');
  }

  /** Whether one more notice fits in alerts.max_per_hour (the fleet's, or this node's when there is none or it is down). */
  private async allowed(): Promise<boolean> {
    if (this.fleet?.available === true) {
      const shared = await this.fleet.allow(this.policy.maxPerHour).catch(() => undefined);
      if (shared !== undefined) return shared;
    }
    const now = this.clock.now();
    this.sentAt = this.sentAt.filter((time) => now - time < HOUR_MS);
    if (this.sentAt.length >= this.policy.maxPerHour) return false;
    this.sentAt.push(now);
    return true;
  }

  private compose(events: readonly FlaggedMessage[], heldBack: number): { subject: string; text: string } {
    const viruses = events.filter((event) => event.findings.some((finding) => finding.kind === 'virus')).length;
    const subject = `mailmoat: ${events.length} message${events.length === 1 ? '' : 's'} with ${viruses > 0 ? 'viruses or executables' : 'executables'}`;
    const lines = events.slice(0, MAX_LISTED_EVENTS).map((event) => {
      const found = event.findings
        .filter((finding) => ALERTING_KINDS.has(finding.kind))
        .map((finding) => `    - ${finding.kind}: ${finding.filename || '(no name)'}: ${finding.reason}`)
        .join('\n');
      return [
        `* ${event.time} ${event.protocol.toUpperCase()} ${event.direction}, action: ${event.action}`,
        `  from ${event.sender || '(none)'} to ${event.recipients.join(', ') || event.user || '(none)'}`,
        `  quarantine: ${event.quarantine ?? '(off)'}`,
        found,
      ].join('\n');
    });
    const more = events.length > MAX_LISTED_EVENTS ? [`... and ${events.length - MAX_LISTED_EVENTS} more in this batch.`] : [];
    const held = heldBack > 0 ? [`${heldBack} earlier event${heldBack === 1 ? ' was' : 's were'} held back by the rate limit (alerts.max_per_hour).`] : [];
    const text = [
      `mailmoat found ${events.length} message${events.length === 1 ? '' : 's'} with a virus or an executable:`,
      '',
      ...lines,
      ...more,
      ...held,
      '',
      'Originals are kept in the quarantine: mailmoat quarantine show ID | release ID.',
    ].join('\n');
    return { subject, text };
  }

  /** alerts.notify_recipients / notify_sender: a short notice per message, within the same rate limit. */
  private notifyParties(message: FlaggedMessage): void {
    const virus = message.findings.some((finding) => finding.kind === 'virus');
    const names = [...new Set(message.findings.filter((finding) => ALERTING_KINDS.has(finding.kind)).map((finding) => finding.filename || '(no name)'))].join(', ');
    const parties: { to: string[]; text: string }[] = [];
    const recipients = message.recipients.map((recipient) => recipient.replace(/^<|>$/g, '')).filter(Boolean);
    if (this.policy.notifyRecipients && recipients.length > 0) {
      parties.push({ to: recipients, text: `A message to you from ${message.sender || '(unknown)'} contained ${names}, which mailmoat ${message.action === 'rewrite' ? 'removed' : 'did not deliver'}. Your administrator can release it (quarantine id ${message.quarantine ?? 'none'}).` });
    }
    const sender = message.sender.replace(/^<|>$/g, '');
    if (this.policy.notifySender && !virus && sender !== '') {
      parties.push({ to: [sender], text: `Your message to ${recipients.join(', ') || '(unknown)'} contained ${names}, which mailmoat ${message.action === 'rewrite' ? 'removed' : 'did not deliver'}.` });
    }
    for (const party of parties) {
      this.sending = this.sending.then(async () => {
        if (!(await this.allowed())) return this.holdBack(1);
        return this.send(party.to, 'mailmoat: an attachment was removed', party.text);
      });
    }
  }

  private async send(to: string[], subject: string, text: string): Promise<void> {
    try {
      const message = await new MailComposer({ from: this.policy.from, to, subject, text }).compile().build();
      await submitMessage(this.target, { from: this.policy.from, to }, message);
      this.logger.info({ to, subject }, 'alert sent');
    } catch (error) {
      this.logger.warn({ err: error, to }, 'alert could not be sent');
    }
  }
}
