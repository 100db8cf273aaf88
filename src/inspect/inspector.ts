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
import { walkLeafParts, type LeafPart, type MimeLimits } from './mime.js';
import { rewriteMessage, type MessageSink, type PartReplacement } from './rewrite.js';
import { sniff } from './sniff.js';

export type FindingKind = NameFindingKind | 'executable-content' | 'unscannable';

export interface Finding {
  part: string;
  filename: string;
  kind: FindingKind;
  reason: string;
}

export interface InspectorPolicy {
  executables: ExecutableList;
  /** Notice text; {filename} and {reason} are filled in. */
  notice: string;
  markHeaders: boolean;
  limits: MimeLimits;
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

export class MailInspector implements Inspector {
  constructor(
    private readonly policy: InspectorPolicy,
    private readonly createSpool: () => SpooledMessage,
  ) {}

  get executablePatterns(): number {
    return this.policy.executables.patterns.length;
  }

  async inspect(message: MessageSource, context: InspectionContext): Promise<Verdict> {
    return (await this.examine(message, context)).verdict;
  }

  /** The verdict with the findings behind it (the `scan` command prints both). */
  async examine(message: MessageSource, _context?: InspectionContext): Promise<InspectionReport> {
    let leaves: LeafPart[];
    try {
      leaves = await walkLeafParts(message, this.policy.limits);
    } catch (error) {
      const reason = `message structure could not be inspected (${(error as Error).message})`;
      return { verdict: { action: 'tempfail', reason }, findings: [{ part: '1', filename: '', kind: 'unscannable', reason }] };
    }
    const findings: Finding[] = [];
    const replacements: PartReplacement[] = [];
    for (const leaf of leaves) {
      const partFindings = this.classify(leaf);
      if (partFindings.length === 0) continue;
      findings.push(...partFindings);
      const first = partFindings[0] as Finding;
      replacements.push({ node: leaf.node, notice: this.notice(first) });
    }
    if (replacements.length === 0) return { verdict: { action: 'pass' }, findings };
    const summary = replacements.length === 1 ? `stripped 1 part` : `stripped ${replacements.length} parts`;
    const rootHeaders: [string, string][] = this.policy.markHeaders
      ? [
          ['X-Mailmoat-Action', summary],
          ...findings.map((finding): [string, string] => ['X-Mailmoat-Finding', headerSafe(`part ${finding.part}: ${finding.kind}: ${finding.filename || '(no name)'}: ${finding.reason}`)]),
        ]
      : [];
    const output = this.createSpool();
    try {
      await rewriteMessage(message, { replacements, rootHeaders, limits: this.policy.limits }, output);
      await output.finish();
    } catch (error) {
      await output.dispose();
      throw error;
    }
    return { verdict: { action: 'rewrite', message: output, summary }, findings };
  }

  private classify(leaf: LeafPart): Finding[] {
    const findings: Finding[] = [];
    for (const name of leaf.names) {
      for (const finding of classifyName(name, this.policy.executables)) findings.push({ part: leaf.path, ...finding });
    }
    const content = sniff(leaf.head);
    if (content.kind === 'executable') {
      findings.push({ part: leaf.path, filename: leaf.names[0] ?? '', kind: 'executable-content', reason: `the content is sniffed as: ${content.format}` });
    }
    return findings;
  }

  private notice(finding: Finding): string {
    return this.policy.notice.replaceAll('{filename}', finding.filename || '(no name)').replaceAll('{reason}', finding.reason);
  }
}
