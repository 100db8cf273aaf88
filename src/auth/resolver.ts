/**
 * The DNS resolver that message authentication uses: the policy's server (`auth.resolver`)
 * or the system's, with one time budget per message shared by every lookup. Past the
 * budget every pending and later lookup of that message fails with ETIMEOUT, which the
 * DKIM, SPF and DMARC checks report as temperror (RFC 8601 2.7, RFC 7208 2.6.6, RFC 7489
 * 6.6.3): a DNS server that does not answer costs at most the budget and never blocks
 * delivery. One resolver (one c-ares channel) serves every message: creating one per message
 * cost more CPU than the lookups themselves. With a cache (dns-cache.ts), an answer it holds is
 * given without a query and without spending the budget, even once the budget is spent.
 */
import { Resolver } from 'node:dns/promises';
import { absenceError, type DnsAnswerCache } from './dns-cache.js';

export type Lookup = (name: string, rrtype: string) => Promise<unknown>;

export interface ResolverSettings {
  /** "ip" or "ip:port" ("[v6]:port"); undefined: the system's resolvers. */
  server: string | undefined;
  /** The whole message's lookups, together. */
  budgetMs: number;
}

export interface BudgetedLookup {
  lookup: Lookup;
  /** Stops the budget's timer (the message is done). */
  close(): void;
}

class DnsBudgetExceeded extends Error {
  readonly code = 'ETIMEOUT';
  constructor(budgetMs: number, name: string) {
    super(`DNS budget of ${budgetMs} ms exceeded (${name})`);
  }
}

export class BudgetedResolver {
  private readonly resolver: Resolver;

  constructor(
    private readonly settings: ResolverSettings,
    private readonly cache?: DnsAnswerCache,
  ) {
    // A query outlives a budget by at most its own timeout, which is the budget.
    this.resolver = new Resolver({ timeout: settings.budgetMs, tries: 1 });
    if (settings.server !== undefined) this.resolver.setServers([settings.server]);
  }

  /** A lookup function for one message; its budget starts now. */
  forMessage(): BudgetedLookup {
    const { budgetMs } = this.settings;
    let expired = false;
    let expire: () => void = () => undefined;
    const deadline = new Promise<void>((resolve) => {
      expire = resolve;
    });
    const timer = setTimeout(() => {
      expired = true;
      expire();
    }, budgetMs);
    timer.unref();
    const cache = this.cache;
    const lookup: Lookup = async (name, rrtype) => {
      const cached = cache?.get(name, rrtype);
      if (cached !== undefined) {
        if ('absent' in cached) throw absenceError(name, cached.absent);
        return cached.records;
      }
      if (expired) throw new DnsBudgetExceeded(budgetMs, name);
      const asked = this.resolver.resolve(name, rrtype);
      const remembered = cache === undefined ? asked : asked.then(
        (records) => cache.storeRecords(name, rrtype, records),
        (error: unknown) => {
          cache.storeFailure(name, rrtype, error);
          throw error;
        },
      );
      const answer = remembered.catch((error: NodeJS.ErrnoException) => {
        // The resolver's own timeout is the budget's (both are budgetMs: whichever timer fires first).
        if (error.code !== 'ETIMEOUT') throw error;
        expired = true;
        return undefined;
      });
      const outcome = await Promise.race([answer.then((records) => (records === undefined ? undefined : { records })), deadline.then(() => undefined)]);
      if (outcome === undefined) throw new DnsBudgetExceeded(budgetMs, name);
      return outcome.records;
    };
    return {
      lookup,
      close: () => {
        clearTimeout(timer);
        expire();
      },
    };
  }
}
