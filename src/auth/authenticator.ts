/**
 * What a rewritten message gets so that it keeps its authentication (RFC 8617, RFC 8601):
 * the original bytes are verified (verify.ts), then the rewritten message loses any
 * Authentication-Results claiming mailmoat's authserv-id, gains one of mailmoat's own for
 * the server behind, and is ARC-sealed with instance i+1 over what will be forwarded.
 * A clean message is forwarded as its original bytes, unless the policy asks for
 * Authentication-Results on every message: then it gets that one field (annotate) and nothing else.
 * Outbound mail is left as it is unless the policy asks (a sender's own DKIM signature is
 * what the world checks; mailmoat's seal there would vouch for the sender's own network).
 */
import type { InspectionContext, MessageSource } from '../inspect/api.js';
import { BudgetedResolver, type ResolverSettings } from './resolver.js';
import { DnsAnswerCache } from './dns-cache.js';
import { arcResultsValue, authenticationResultsField, withoutForgedResults } from './results.js';
import { arcSet, relaxedBodyHash, type ArcKey } from './seal.js';
import { splitHeader, withHeader } from './message.js';
import { authenticate, type Authentication } from './verify.js';

export type ForwardedMessage = MessageSource & { dispose(): Promise<void> };

export interface AuthenticatorSettings {
  authservId: string;
  /** Without a key, rewritten mail gets Authentication-Results and no ARC set. */
  arc?: ArcKey;
  /** Clean mail gets Authentication-Results too (auth.results_on_every_message). */
  resultsOnEveryMessage: boolean;
  resolver: ResolverSettings;
  /** DNS answers are kept this long for later messages (auth.dns_cache_seconds; 0: not kept). */
  dnsCacheSeconds: number;
  /** Outbound mail is verified and sealed too. */
  sealOutbound: boolean;
  /** The rewritten header block is read up to this size (limits.max_mime_header_bytes). */
  maxHeaderBytes: number;
  /** The signatures' time and the DNS cache's clock. */
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
    const now = settings.now;
    const cache = new DnsAnswerCache({ answerSeconds: settings.dnsCacheSeconds, ...(now === undefined ? {} : { now: () => now().getTime() }) });
    this.resolver = new BudgetedResolver(settings.resolver, cache);
  }

  /** The message to forward instead of `rewritten`; disposing it disposes `rewritten`. */
  async apply(original: MessageSource, rewritten: ForwardedMessage, context: InspectionContext): Promise<ForwardedMessage> {
    if (!this.applies(context)) return rewritten;
    const { authservId, arc } = this.settings;
    const verified = await this.verify(original, context);
    const split = await splitHeader(rewritten, this.settings.maxHeaderBytes);
    const kept = withoutForgedResults(split.header, authservId);
    const results = Buffer.from(authenticationResultsField(authservId, verified.results), 'latin1');
    const unsealed = withHeader(results, { header: kept.block, bodyOffset: split.bodyOffset }, rewritten);
    const event = { chain: verified.chain, forgedRemoved: kept.removed, results: verified.results };
    if (!verified.sealable || arc === undefined) {
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

  /**
   * A clean message with one Authentication-Results on top (forged ones removed), when the policy
   * asks for it on every message; undefined when it does not (the original is forwarded as it is).
   * Disposing it leaves `original` alone: the session owns that.
   */
  async annotate(original: MessageSource, context: InspectionContext): Promise<ForwardedMessage | undefined> {
    if (!this.settings.resultsOnEveryMessage || !this.applies(context)) return undefined;
    const { authservId } = this.settings;
    const verified = await this.verify(original, context);
    const split = await splitHeader(original, this.settings.maxHeaderBytes);
    const kept = withoutForgedResults(split.header, authservId);
    this.onAuthenticated({ chain: verified.chain, forgedRemoved: kept.removed, results: verified.results, sealed: undefined });
    const results = Buffer.from(authenticationResultsField(authservId, verified.results), 'latin1');
    return withHeader(results, { header: kept.block, bodyOffset: split.bodyOffset }, { size: original.size, open: () => original.open(), dispose: async () => undefined });
  }

  /** Not a TOP response (cut short: its signatures cannot verify, a seal would vouch for a fragment), nor outbound mail unless asked. */
  private applies(context: InspectionContext): boolean {
    return context.partial !== true && (context.direction !== 'outbound' || this.settings.sealOutbound);
  }

  private async verify(original: MessageSource, context: InspectionContext): Promise<Authentication> {
    const dns = this.resolver.forMessage();
    try {
      return await authenticate(original, { sender: context.sender, ...(context.client === undefined ? {} : { client: context.client }) }, dns.lookup, this.settings.authservId);
    } finally {
      dns.close();
    }
  }
}
