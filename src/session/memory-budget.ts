/**
 * The per-process memory budget (limits.max_process_memory_bytes): a serving process over
 * it takes no new payload (SMTP DATA: 451 4.3.1, RFC 3463 "mail system full"; POP3 RETR/TOP
 * to inspect: -ERR [SYS/TEMP], RFC 2449) instead of growing; mail already in flight goes on.
 */

/** The process's resident bytes when they are over `budgetBytes` (0: no budget), else undefined. */
export function overMemoryBudget(budgetBytes: number): number | undefined {
  if (budgetBytes === 0) return undefined;
  const resident = process.memoryUsage.rss();
  return resident > budgetBytes ? resident : undefined;
}
