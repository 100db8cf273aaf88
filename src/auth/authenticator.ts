/**
 * What a rewritten message gets so that it keeps its authentication (RFC 8617, RFC 8601):
 * the original bytes are verified (verify.ts), then the rewritten message loses any
 * Authentication-Results claiming mailmoat's authserv-id, gains one of mailmoat's own for
 * the server behind, and is ARC-sealed with instance i+1 over what will be forwarded.
 * Only rewritten messages come here: a clean message is forwarded as its original bytes.
 * Outbound mail is left as it is unless the policy asks (a sender's own DKIM signature is
 * what the world checks; mailmoat's seal there would vouch for the sender's own network).
 */
import type { InspectionContext, MessageSource } from '../inspect/api.js';
import { BudgetedResolver, type ResolverSettings } from './resolver.js';
import { arcResultsValue, authenticationResultsField, withoutForgedResults } from './results.js';
import { arcSet, relaxedBodyHash, type ArcKey } from './seal.js';
import { splitHeader, withHeader } from './message.js';
import { authenticate } from './verify.js';

export type ForwardedMessage = MessageSource & { dispose(): Promise<void> };

export interface AuthenticatorSettings {
  authservId: string;
  arc: ArcKey;
  resolver: ResolverSettings;
  /** Outbound mail is verified and sealed too. */
  sealOutbound: boolean;
  /** The rewritten header block is read up to this size (limits.max_mime_header_bytes). */
  maxHeaderBytes: number;
  now?: () => Date;
}

export interface AuthenticationEvent {
  chain: 'none' | 'pass' | 'fail';
  /** The ARC instance added; undefined when not sealed. */
  sealed: number | undefined;
  forgedRemoved: number;
  results: readonly string[];
}

export class MessageAuthenticator {
  private readonly resolver: BudgetedResolver;

  constructor(
    private readonly settings: AuthenticatorSettings,
    private readonly onAuthenticated: (event: AuthenticationEvent) => void = () => undefined,
  ) {
    this.resolver = new BudgetedResolver(settings.resolver);
  }

  /** The message to forward instead of `rewritten`; disposing it disposes `rewritten`. */
  async apply(original: MessageSource, rewritten: ForwardedMessage, context: InspectionContext): Promise<ForwardedMessage> {
    // A TOP response is cut short: its signatures cannot verify and a seal over it would vouch for a fragment.
    if (context.partial === true) return rewritten;
    if (context.direction === 'outbound' && !this.settings.sealOutbound) return rewritten;
    const { authservId, arc } = this.settings;
    const dns = this.resolver.forMessage();
    let verified;
    try {
      verified = await authenticate(original, { sender: context.sender, ...(context.client === undefined ? {} : { client: context.client }) }, dns.lookup, authservId);
    } finally {
      dns.close();
    }
    const split = await splitHeader(rewritten, this.settings.maxHeaderBytes);
    const kept = withoutForgedResults(split.header, authservId);
    const results = Buffer.from(authenticationResultsField(authservId, verified.results), 'latin1');
    const unsealed = withHeader(results, { header: kept.block, bodyOffset: split.bodyOffset }, rewritten);
    const event = { chain: verified.chain, forgedRemoved: kept.removed, results: verified.results };
    if (!verified.sealable) {
      this.onAuthenticated({ ...event, sealed: undefined });
      return unsealed;
    }
    const instance = verified.instance + 1;
    // The empty line is two bytes; a message of header fields only has no body (the skip runs past its end).
    const bodyHash = await relaxedBodyHash(rewritten, split.bodyOffset + 2);
    const seal = arcSet(Buffer.concat([results, kept.block]), bodyHash, arc, {
      instance,
      cv: verified.chain,
      authResults: arcResultsValue(authservId, verified.results),
      time: (this.settings.now ?? (() => new Date()))(),
    });
    this.onAuthenticated({ ...event, sealed: instance });
    return withHeader(Buffer.concat([seal, results]), { header: kept.block, bodyOffset: split.bodyOffset }, rewritten);
  }
}
