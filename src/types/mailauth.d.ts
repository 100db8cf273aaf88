// Type declarations for the parts of mailauth (CommonJS, untyped in the 4.x line that runs on Node 20) that
// src/auth uses: DKIM verification, SPF, DMARC, ARC chain validation and sealing.
declare module 'mailauth/lib/dkim/verify.js' {
  import type { Readable } from 'node:stream';
  import type { Resolver } from 'mailauth/lib/arc/index.js';
  export interface DkimRow {
    signingDomain?: string;
    /** The A-R row, `dkim=pass header.i=@example.org ...`. */
    info: string;
    status: { result: string; aligned?: string | false; underSized?: number };
  }
  export interface ArcData {
    chain: unknown[] | false;
    lastEntry?: { i: number };
    error?: Error;
  }
  export interface DkimResult {
    headerFrom: string[] | false | undefined;
    envelopeFrom: string | false | undefined;
    results: DkimRow[];
    /** Non-enumerable: the ARC chain read from the headers. */
    readonly arc: ArcData;
  }
  export function dkimVerify(input: Readable | Buffer, options: { resolver: Resolver; sender?: string; minBitLength?: number }): Promise<DkimResult>;
}

declare module 'mailauth/lib/spf/index.js' {
  import type { Resolver } from 'mailauth/lib/arc/index.js';
  export interface SpfResult {
    domain: string;
    info: string;
    status: { result: string };
  }
  export function spf(options: { sender: string; ip: string; helo: string; mta: string; resolver: Resolver }): Promise<SpfResult | false>;
}

declare module 'mailauth/lib/dmarc/index.js' {
  import type { Resolver, ArcResult } from 'mailauth/lib/arc/index.js';
  export interface DmarcResult {
    info?: string;
    status: { result: string };
  }
  export function dmarc(options: {
    headerFrom: string[];
    spfDomains: string[];
    dkimDomains: { id?: string; domain?: string; aligned?: string | false; underSized?: number }[];
    arcResult: ArcResult | undefined;
    resolver: Resolver;
  }): Promise<DmarcResult>;
}

declare module 'mailauth/lib/arc/index.js' {
  import type { ArcData } from 'mailauth/lib/dkim/verify.js';
  /** dns.promises.resolve's shape: TXT answers come as arrays of strings. */
  export type Resolver = (name: string, rrtype: string) => Promise<unknown>;
  export interface ArcResult {
    /** The highest instance of the chain read (0 without one; false when the chain could not be read). */
    i?: number | false;
    info?: string;
    status: { result: 'none' | 'pass' | 'fail'; comment?: string; shouldSeal?: boolean };
  }
  export function arc(data: ArcData, options: { resolver: Resolver; minBitLength?: number }): Promise<ArcResult>;
}

declare module 'mailauth/lib/dkim/sign.js' {
  /** DKIM-Signature header fields (CRLF-terminated) for `input` (the ARC bench signs its message with it). */
  export function dkimSign(
    input: Buffer,
    options: { canonicalization?: string; signatureData: { signingDomain: string; selector: string; privateKey: string; algorithm?: string }[] },
  ): Promise<{ signatures: string; errors: unknown[] }>;
}


declare module 'mailauth/lib/dkim/body/index.js' {
  /** mailauth's body hasher, which its DKIM verifier uses (the tests compare it, patched, with dkimpy). */
  export function dkimBody(canonicalization: 'relaxed' | 'simple', algorithm: string): { update(chunk: Buffer): void; digest(encoding: 'base64'): string };
}
