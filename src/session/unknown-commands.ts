/**
 * The unknown-command limit of both dialects (limits.max_unknown_commands): a peer that
 * keeps sending what is not a command (an HTTP request, a port scan, a confused client) is
 * closed, with 421 in SMTP (RFC 5321 4.2.2 / 3.8) and -ERR in POP3 (RFC 1939 3). Invalid
 * characters, unknown verbs and over-long lines count alike (POP3 counts the latter too;
 * SMTP answers those without counting, as before).
 */

export class UnknownCommands {
  private seen = 0;

  constructor(private readonly limit: number) {}

  /** Counts one more; true when this one reaches the limit (the session is then closed). */
  record(): boolean {
    this.seen++;
    return this.seen >= this.limit;
  }
}
