/**
 * What a container reader hands over for each member: its path, declared size,
 * encryption, first bytes (to sniff) and, for a member that is itself a
 * container, its whole content (to open in turn). A MemberReader takes a
 * member's bytes as they are decompressed and enforces the bounds shared by the
 * whole tree of containers of one part: the expanded bytes and the expansion
 * ratio. It keeps at most SNIFF_BYTES of an ordinary member.
 */
import { SNIFF_BYTES } from '../sniff.js';
import { IDENTIFY_BYTES, identifyContainer } from './identify.js';

export type UnscannableReason = 'encrypted' | 'corrupt' | 'limits' | 'too_deep' | 'too_many_members' | 'too_large' | 'bomb' | 'timeout' | 'unsupported' | 'partial';

export interface Unscannable {
  unscannable: UnscannableReason;
  reason: string;
}

export interface ArchiveLimits {
  maxDepth: number;
  maxMembers: number;
  /** All members of all containers of one part, decompressed, together. */
  maxExpandedBytes: number;
  maxExpansionRatio: number;
  /** A member that is a container is read whole up to this size. */
  maxNestedBytes: number;
  /** All containers of one part, together. */
  maxSeconds: number;
}

export interface Member {
  path: string;
  /** The uncompressed size the container declares (0 when it declares none). */
  declaredBytes: number;
  encrypted: boolean;
  head: Buffer;
  body?: Buffer | 'too big';
}

export interface Listing {
  members: Member[];
  /** Findings of the container format itself (Office macros, embedded objects, an installer). */
  notes?: FormatNote[];
}

export interface FormatNote {
  kind: 'office-macros' | 'office-embedded' | 'executable-content';
  path: string;
  reason: string;
}

/** One walk over the containers of one part: the limits and what has been spent of them. */
export interface ContainerWalk {
  limits: ArchiveLimits;
  /** Epoch milliseconds. */
  deadline: number;
  expandedBytes: number;
  /** Where an archive that a tool must seek in is written for the tool (0600, removed after). */
  tempDir: string;
}

/** Below this much output an archive's ratio is not judged (a tiny archive of zeros is no bomb). */
export const RATIO_FLOOR_BYTES = 1024 * 1024;

export const baseName = (path: string): string => path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);

/** The expansion of one container: what it weighs and what it has produced. */
export class Expansion {
  produced = 0;
  constructor(readonly sourceBytes: number) {}
}

export class MemberReader {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private whole: boolean | undefined;
  private tooBig = false;

  constructor(
    private readonly path: string,
    private readonly declaredBytes: number,
    private readonly encrypted: boolean,
    private readonly walk: ContainerWalk,
    private readonly expansion: Expansion,
  ) {}

  /** Takes the next bytes; says which bound they broke, if any (the reader then stops). */
  push(chunk: Buffer): Unscannable | undefined {
    const { limits } = this.walk;
    this.walk.expandedBytes += chunk.length;
    this.expansion.produced += chunk.length;
    if (this.walk.expandedBytes > limits.maxExpandedBytes) return { unscannable: 'too_large', reason: `expands to more than ${limits.maxExpandedBytes} bytes` };
    if (this.expansion.produced > RATIO_FLOOR_BYTES && this.expansion.produced / Math.max(this.expansion.sourceBytes, 1) > limits.maxExpansionRatio) {
      return { unscannable: 'bomb', reason: `expands more than ${limits.maxExpansionRatio} times its size: a decompression bomb` };
    }
    const wanted = this.whole === true ? limits.maxNestedBytes + 1 : this.whole === false ? SNIFF_BYTES : Math.max(SNIFF_BYTES, IDENTIFY_BYTES);
    if (this.kept < wanted) {
      this.chunks.push(chunk);
      this.kept += chunk.length;
    }
    if (this.whole === undefined && this.kept >= IDENTIFY_BYTES) this.decide();
    if (this.whole === true && this.kept > limits.maxNestedBytes) this.tooBig = true;
    return undefined;
  }

  /** Nothing more is kept: an ordinary member's first bytes are in, or a container member is over maxNestedBytes (a reader that can skip the rest may). */
  get satisfied(): boolean {
    return (this.whole === false && this.kept >= SNIFF_BYTES) || this.tooBig;
  }

  finish(): Member {
    if (this.whole === undefined) this.decide();
    const bytes = Buffer.concat(this.chunks);
    const member: Member = { path: this.path, declaredBytes: this.declaredBytes, encrypted: this.encrypted, head: bytes.subarray(0, SNIFF_BYTES) };
    if (this.whole === true) member.body = this.tooBig ? 'too big' : bytes;
    return member;
  }

  private decide(): void {
    this.whole = identifyContainer(Buffer.concat(this.chunks).subarray(0, IDENTIFY_BYTES), [baseName(this.path)]) !== undefined;
  }
}
