/**
 * The inspector: walk the message, classify every leaf part, decide, and rewrite
 * only when something was found. A message without findings is passed as its
 * original bytes. Findings per part: its names (filename.ts) and its decoded first
 * bytes (sniff.ts). Executables are stripped: the part becomes a notice.
 * A message whose structure cannot be walked (limits, malformed beyond mailsplit's
 * tolerance) is never passed unread: the verdict is tempfail.
 */
import type { Inspector, InspectionContext, MessageSource, Verdict } from './api.js';
import { classifyName, type ExecutableList, type NameFindingKind } from './filename.js';
import { wildcardPattern } from '../policy/wildcard.js';
import { walkLeafParts, type AmbiguousNode, type LeafPart, type MimeLimits, type WholePartSink } from './mime.js';
import { rewriteMessage, type MessageSink, type PartReplacement } from './rewrite.js';
import { sniff } from './sniff.js';
import { inspectArchive, type ArchiveLimits, type UnscannableReason } from './archive.js';
import { mapBounded } from './containers/bounded.js';
import type { ClamdClient, ClamdFailover, ScanOutcome } from './clamd.js';
import type { MessageAuthenticator } from '../auth/authenticator.js';

/** A clamd outcome as a finding, or undefined when clean. */
function scanFinding(part: string, filename: string, outcome: ScanOutcome): Finding | undefined {
  switch (outcome.kind) {
    case 'clean':
      return undefined;
    case 'infected':
      return { part, filename, kind: 'virus', reason: `infected with ${outcome.signature}` };
    case 'unscannable':
      if (outcome.reason === 'encrypted' || outcome.reason === 'limits') {
        return { part, filename, kind: 'unscannable', unscannable: outcome.reason, reason: `the virus scanner could not look inside (${outcome.detail})` };
      }
      return { part, filename, kind: 'scanner-failure', reason: `the virus scanner failed (${outcome.reason}: ${outcome.detail})` };
  }
}

/** Decoded parts go to clamd as the walk hands them over, at most `concurrency` at a time. */
class PartScans implements WholePartSink {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly found = new Map<number, Finding | undefined>();

  constructor(private readonly scanner: ScannerPolicy) {}

  get maxBytes(): number {
    return this.scanner.maxBytes;
  }

  async take(part: LeafPart, decoded: Buffer | 'too big'): Promise<void> {
    const name = part.names[0] ?? '';
    if (decoded === 'too big') {
      this.found.set(part.node, { part: part.path, filename: name, kind: 'unscannable', unscannable: 'limits', reason: `larger than the ${this.scanner.maxBytes} bytes sent to the virus scanner` });
      return;
    }
    const scan = this.scanner.client.scan(async function* () { yield decoded; }).then((outcome) => {
      this.found.set(part.node, scanFinding(part.path, name, outcome));
    });
    const tracked = scan.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    if (this.inFlight.size >= this.scanner.concurrency) await Promise.race(this.inFlight);
  }

  async results(): Promise<Map<number, Finding | undefined>> {
    await Promise.all(this.inFlight);
    return this.found;
  }
}

export type FindingKind = NameFindingKind | 'executable-content' | 'office-macros' | 'office-embedded' | 'unscannable' | 'ambiguous-headers' | 'virus' | 'scanner-failure';

export interface Finding {
  part: string;
  filename: string;
  kind: FindingKind;
  /** For kind `unscannable`: why (the policy chooses the action per reason). */
  unscannable?: UnscannableReason;
  reason: string;
}

export interface ScannerPolicy {
  client: ClamdFailover;
  /** Decoded parts larger than this are not sent (clamd would refuse them): unscannable (limits). */
  maxBytes: number;
  /** Scans in flight at once for one message. */
  concurrency: number;
  infected: 'strip' | 'reject';
  /** Scanner down, timed out or failing. */
  failure: 'tempfail' | 'pass';
  /** What is sent: each decoded part and the raw message as a second reading, or one of them. */
  scope: 'parts-and-message' | 'parts' | 'message';
}

export interface InspectorPolicy {
  /** clamd, when `antivirus.clamd` names one. */
  scanner?: ScannerPolicy;
  executables: ExecutableList & { action: 'strip' | 'sanitize'; renameSuffix: string };
  /** Exempt from the executable policy: a sender matching one, or every recipient matching one. */
  allow: { senders: readonly string[]; recipients: readonly string[] };
  subjectTag: string;
  unscannable: Readonly<Record<UnscannableReason, UnscannableAction>>;
  archiveLimits: ArchiveLimits;
  /** Office documents: VBA macros and embedded packages, each with its action. */
  office: { macros: UnscannableAction; embedded: UnscannableAction };
  /** Where archives are written for a tool that must seek in them. */
  tempDir?: string;
  /** Notice text; {filename} and {reason} are filled in. */
  notice: string;
  markHeaders: boolean;
  limits: MimeLimits;
  /** Verifies the original and ARC-seals the rewritten message (auth.*), when the policy configures a key. */
  authenticator?: MessageAuthenticator;
}

export interface SpooledMessage extends MessageSource, MessageSink {
  finish(): Promise<void>;
  dispose(): Promise<void>;
}

export interface InspectionReport {
  verdict: Verdict;
  findings: Finding[];
}

/** Header values carry only printable ASCII (names come from the sender: no header injection). */
const headerSafe = (text: string): string => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);

type UnscannableAction = 'strip' | 'pass' | 'tempfail' | 'reject';

type PartAction = UnscannableAction | 'sanitize';

/** How bad a part's outcome is; the message takes the worst. */
const SEVERITY: Record<PartAction, number> = { pass: 1, sanitize: 2, strip: 3, tempfail: 4, reject: 5 };

const bareAddress = (path: string): string => path.replace(/^<|>$/g, '');

/** Parts of one message classified side by side (containers may each run an archive tool as a subprocess). */
const PARTS_CLASSIFIED_AT_ONCE = 4;

export class MailInspector implements Inspector {
  /** The allow-lists, compiled once. */
  private readonly allowPatterns: { senders: RegExp[]; recipients: RegExp[] };

  constructor(
    private readonly policy: InspectorPolicy,
    private readonly createSpool: () => SpooledMessage,
    /** Releases what the inspector owns (a managed clamd). */
    readonly close: () => Promise<void> = async () => undefined,
  ) {
    this.allowPatterns = { senders: policy.allow.senders.map(wildcardPattern), recipients: policy.allow.recipients.map(wildcardPattern) };
  }

  /** The clamd clients, in failover order, when the policy configures any (`mailmoat check` asks each for PING and VERSION). */
  get scanners(): readonly ClamdClient[] {
    return this.policy.scanner?.client.clients ?? [];
  }

  get executablePatterns(): number {
    return this.policy.executables.patterns.length;
  }

  async inspect(message: MessageSource, context: InspectionContext): Promise<Verdict> {
    return (await this.examine(message, context)).verdict;
  }

  /** The verdict with the findings behind it (the `scan` command prints both). */
  async examine(message: MessageSource, context?: InspectionContext): Promise<InspectionReport> {
    let leaves: LeafPart[];
    const ambiguous: AmbiguousNode[] = [];
    const scanner = this.policy.scanner;
    const scans = scanner === undefined || scanner.scope === 'message' ? undefined : new PartScans(scanner);
    // The raw message too, as a second reading (clamd's own MIME parser may see what ours does not),
    // scanned while the walk runs. Like a part, a message larger than clamd is configured to accept is
    // not sent (clamd would hang up mid-stream). scan() never throws: a failure is an outcome.
    const wholeScan = scanner === undefined || scanner.scope === 'parts' || message.size > scanner.maxBytes ? undefined : scanner.client.scan(() => message.open());
    try {
      leaves = await walkLeafParts(message, this.policy.limits, 0, ambiguous, scans);
    } catch (error) {
      // The structure itself cannot be walked: no part can be stripped, so the message is not passed unread.
      const reason = `message structure could not be inspected (${(error as Error).message})`;
      const findings: Finding[] = [{ part: '1', filename: '', kind: 'unscannable', unscannable: 'limits', reason }];
      return { verdict: { action: 'tempfail', reason, findings }, findings };
    }
    const scanned = scans === undefined ? undefined : await scans.results();
    const findings: Finding[] = [];
    const replacements: PartReplacement[] = [];
    let worst: { action: PartAction; reason: string } = { action: 'pass', reason: '' };
    let warnings = 0;
    const exempt = context !== undefined && this.allowed(context);
    if (scanner !== undefined && scanner.scope !== 'parts') {
      const whole =
        wholeScan === undefined
          ? ({ part: 'whole message', filename: '', kind: 'unscannable', unscannable: 'limits', reason: `larger than the ${scanner.maxBytes} bytes sent to the virus scanner` } satisfies Finding)
          : scanFinding('whole message', '', await wholeScan);
      const partInfected = [...(scanned?.values() ?? [])].some((finding) => finding?.kind === 'virus');
      // Encryption and size limits are judged per part (a message over clamd's stream limit is no reason to
      // refuse it), unless the message is the only reading (scope `message`): then limits never mean clean.
      if (whole !== undefined && (whole.kind !== 'unscannable' || scanner.scope === 'message') && (whole.kind !== 'virus' || !partInfected)) {
        findings.push(whole);
        const action = this.findingAction(whole, false);
        // A virus found only in the message as a whole cannot be cut out: the message is refused.
        const messageAction: PartAction = action === 'strip' || action === 'sanitize' ? 'reject' : action;
        if (SEVERITY[messageAction] > SEVERITY[worst.action]) worst = { action: messageAction, reason: whole.reason };
        if (messageAction === 'pass') warnings++;
      }
    }
    const classified = await mapBounded(leaves, PARTS_CLASSIFIED_AT_ONCE, (leaf) => this.classify(leaf));
    for (const [index, leaf] of leaves.entries()) {
      const scanFindingOfLeaf = scanned?.get(leaf.node);
      const all = [...(classified[index] ?? []), ...(scanFindingOfLeaf === undefined ? [] : [scanFindingOfLeaf])];
      // An allow-listed transaction is exempt from the executable policy, never from the unscannable one.
      const partFindings = exempt ? all.filter((finding) => finding.kind === 'unscannable') : all;
      if (partFindings.length === 0) continue;
      findings.push(...partFindings);
      const { action, finding } = this.partAction(partFindings, context?.partial === true);
      if (SEVERITY[action] > SEVERITY[worst.action]) worst = { action, reason: `part ${finding.part}: ${finding.reason}` };
      if (action === 'strip') replacements.push({ node: leaf.node, kind: 'notice', notice: this.notice(finding) });
      if (action === 'sanitize') replacements.push({ node: leaf.node, kind: 'rename', filename: `${leaf.names[0] || 'attachment'}${this.policy.executables.renameSuffix}` });
      if (action === 'pass') warnings++;
    }
    // Headers that read two ways are written back the one way that was inspected, so every reader agrees.
    for (const node of ambiguous) {
      findings.push({ part: node.path, filename: '', kind: 'ambiguous-headers', reason: node.reason });
      replacements.push({ node: node.node, kind: 'normalize', ...(node.contentType === undefined ? {} : { contentType: node.contentType }), ...(node.encoding === undefined ? {} : { encoding: node.encoding }) });
    }
    switch (worst.action) {
      case 'tempfail':
      case 'reject':
        return { verdict: { action: worst.action, reason: `message could not be inspected: ${worst.reason}`, findings }, findings };
      case 'pass':
        if (warnings === 0 && ambiguous.length === 0) {
          // Authentication-Results on every message when the policy asks: the original with that header on top.
          const annotated = context === undefined ? undefined : await this.policy.authenticator?.annotate(message, context);
          return { verdict: annotated === undefined ? { action: 'pass' } : { action: 'pass', message: annotated }, findings };
        }
        break;
      case 'sanitize':
      case 'strip':
        break;
    }
    const count = (kind: PartReplacement['kind']): number => replacements.filter((replacement) => replacement.kind === kind).length;
    const parts = (n: number): string => `${n} part${n === 1 ? '' : 's'}`;
    const summary = [
      count('notice') > 0 ? `stripped ${parts(count('notice'))}` : '',
      count('rename') > 0 ? `renamed ${parts(count('rename'))}` : '',
      count('normalize') > 0 ? `normalized ${parts(count('normalize'))} with ambiguous headers` : '',
      warnings > 0 ? `passed ${warnings} uninspectable part${warnings === 1 ? '' : 's'}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const rootHeaders: [string, string][] = this.policy.markHeaders || warnings > 0
      ? [
          ['X-Mailmoat-Action', summary],
          ...findings.map((finding): [string, string] => ['X-Mailmoat-Finding', headerSafe(`part ${finding.part}: ${finding.kind}: ${finding.filename || '(no name)'}: ${finding.reason}`)]),
        ]
      : [];
    const output = this.createSpool();
    let forwarded: MessageSource & { dispose(): Promise<void> } = output;
    try {
      await rewriteMessage(message, { replacements, rootHeaders, subjectTag: this.policy.subjectTag, limits: this.policy.limits }, output);
      await output.finish();
      // The rewrite breaks DKIM: what the original proved is recorded and sealed (ARC) over what is forwarded.
      if (this.policy.authenticator !== undefined && context !== undefined) forwarded = await this.policy.authenticator.apply(message, output, context);
    } catch (error) {
      await output.dispose();
      throw error;
    }
    return { verdict: { action: 'rewrite', message: forwarded, summary, findings }, findings };
  }

  /** Executables are stripped; an unscannable part gets its reason's policy action; the worst wins. */
  private partAction(findings: readonly Finding[], partial: boolean): { action: PartAction; finding: Finding } {
    let chosen: { action: PartAction; finding: Finding } = { action: 'pass', finding: findings[0] as Finding };
    for (const finding of findings) {
      const action = this.findingAction(finding, partial);
      if (SEVERITY[action] > SEVERITY[chosen.action] || chosen.finding === finding) chosen = { action, finding };
    }
    return chosen;
  }

  /** `partial`: the message may be cut short (TOP), so an unreadable part is stripped (or passed), never refused. */
  private findingAction(finding: Finding, partial: boolean): PartAction {
    switch (finding.kind) {
      case 'unscannable': {
        const configured = this.policy.unscannable[finding.unscannable ?? 'corrupt'];
        if (partial && finding.unscannable === 'corrupt') return configured === 'pass' ? 'pass' : 'strip';
        return configured;
      }
      case 'virus':
        return this.policy.scanner?.infected ?? 'strip';
      case 'scanner-failure':
        return this.policy.scanner?.failure ?? 'tempfail';
      case 'office-macros':
        return this.policy.office.macros;
      case 'office-embedded':
        return this.policy.office.embedded;
      default:
        return this.policy.executables.action;
    }
  }

  /** Findings of one leaf part, including those of an attached message's own parts (paths `2/1`, `2/2`...). */
  private async classify(leaf: LeafPart, prefix = ''): Promise<Finding[]> {
    const findings = await this.classifyOwn(prefix === '' ? leaf : { ...leaf, path: `${prefix}${leaf.path}` });
    if (Array.isArray(leaf.embedded)) {
      for (const inner of leaf.embedded) findings.push(...(await this.classify(inner, `${prefix}${leaf.path}/`)));
    } else if (leaf.embedded !== undefined) {
      findings.push({ part: `${prefix}${leaf.path}`, filename: leaf.names[0] ?? '', kind: 'unscannable', unscannable: leaf.embedded.unscannable, reason: leaf.embedded.reason });
    }
    return findings;
  }

  private async classifyOwn(leaf: LeafPart): Promise<Finding[]> {
    const findings: Finding[] = [];
    for (const name of leaf.names) {
      for (const finding of classifyName(name, this.policy.executables)) findings.push({ part: leaf.path, ...finding });
    }
    const content = sniff(leaf.head);
    if (content.kind === 'executable') {
      findings.push({ part: leaf.path, filename: leaf.names[0] ?? '', kind: 'executable-content', reason: `the content is sniffed as: ${content.format}` });
    }
    for (const reading of leaf.otherReadings) {
      const other = sniff(reading.head);
      if (other.kind === 'executable') {
        findings.push({ part: leaf.path, filename: leaf.names[0] ?? '', kind: 'executable-content', reason: `read as ${reading.encoding} (the part declares more than one encoding), sniffed as: ${other.format}` });
      }
    }
    for (const file of leaf.contained) {
      for (const name of file.names) {
        for (const finding of classifyName(name, this.policy.executables)) findings.push({ part: leaf.path, ...finding, reason: `${file.form}: ${finding.reason}` });
      }
      const containedContent = sniff(file.head);
      if (containedContent.kind === 'executable') {
        findings.push({ part: leaf.path, filename: file.names[0] ?? '', kind: 'executable-content', reason: `${file.form}, sniffed as: ${containedContent.format}` });
      }
    }
    if (leaf.unreadable !== undefined) findings.push({ part: leaf.path, filename: leaf.names[0] ?? '', kind: 'unscannable', unscannable: leaf.unreadable.unscannable, reason: leaf.unreadable.reason });
    if (leaf.archive === 'too big') {
      findings.push({ part: leaf.path, filename: leaf.names[0] ?? '', kind: 'unscannable', unscannable: 'too_large', reason: `an archive larger than ${this.policy.limits.maxArchiveBytes} bytes` });
    } else if (leaf.archive !== undefined) {
      const context = { list: this.policy.executables, limits: this.policy.archiveLimits, ...(this.policy.tempDir === undefined ? {} : { tempDir: this.policy.tempDir }) };
      for (const finding of await inspectArchive(leaf.archive, leaf.names, leaf.contentType, context)) {
        findings.push({ part: leaf.path, ...finding });
      }
    }
    return findings;
  }

  private allowed(context: InspectionContext): boolean {
    const { senders, recipients } = this.allowPatterns;
    if (senders.some((pattern) => pattern.test(bareAddress(context.sender)))) return true;
    return (
      recipients.length > 0 &&
      context.recipients.length > 0 &&
      context.recipients.every((recipient) => recipients.some((pattern) => pattern.test(bareAddress(recipient))))
    );
  }

  private notice(finding: Finding): string {
    return this.policy.notice.replaceAll('{filename}', finding.filename || '(no name)').replaceAll('{reason}', finding.reason);
  }
}
