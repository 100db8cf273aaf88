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
 */
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Logger } from '../observe/log.js';
import type { FlaggedMessage } from '../quarantine/store.js';
import { submitMessage, type ReleaseTarget } from '../quarantine/release.js';

/** Findings that raise an alert: a virus, an executable found by name or by content, Office macros or an embedded package. */
const ALERTING_KINDS: ReadonlySet<string> = new Set(['virus', 'executable', 'executable-content', 'double-extension', 'hidden-extension', 'clsid', 'bidi-control', 'office-macros', 'office-embedded']);
/** At most this many events are listed one by one in a notice; the rest are counted. */
const MAX_LISTED_EVENTS = 50;
const HOUR_MS = 3_600_000;

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
  private timer: NodeJS.Timeout | undefined;
  private sentAt: number[] = [];
  private sending: Promise<void> = Promise.resolve();

  constructor(
    private readonly policy: AlertPolicy,
    private readonly target: ReleaseTarget,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Called for every message with findings; only viruses and executables alert. */
  report(message: FlaggedMessage): void {
    if (!message.findings.some((finding) => ALERTING_KINDS.has(finding.kind))) return;
    if (this.policy.to.length > 0) {
      this.pending.push(message);
      this.timer ??= setTimeout(() => this.flush(), this.policy.batchSeconds * 1000);
      this.timer.unref();
    }
    this.notifyParties(message);
  }

  /** Sends what is pending now (also at shutdown); resolves when the notices went out. */
  async flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const events = this.pending;
    this.pending = [];
    if (events.length === 0) return this.sending;
    if (!this.allowed()) {
      this.heldBack += events.length;
      this.logger.warn({ events: events.length, heldBack: this.heldBack }, 'alert rate limit reached: events held back until the next notice');
      return this.sending;
    }
    const heldBack = this.heldBack;
    this.heldBack = 0;
    const notice = this.compose(events, heldBack);
    this.sending = this.sending.then(() => this.send([...this.policy.to], notice.subject, notice.text));
    return this.sending;
  }

  private allowed(): boolean {
    const now = this.now();
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
      if (!this.allowed()) {
        this.heldBack++;
        continue;
      }
      this.sending = this.sending.then(() => this.send(party.to, 'mailmoat: an attachment was removed', party.text));
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
