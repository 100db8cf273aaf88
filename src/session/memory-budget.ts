/**
 * The per-process memory budget (limits.max_process_memory_bytes): a serving process over
 * it takes no new payload (SMTP DATA: 451 4.3.1, RFC 3463 "mail system full"; POP3 RETR/TOP
 * to inspect: -ERR [SYS/TEMP], RFC 2449) instead of growing; mail already in flight goes on.
 *
 * Reading the resident size is a file read of /proc/self/stat (open, read, close): it is
 * sampled at most once per RESIDENT_SAMPLE_INTERVAL_MS, not once per message.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../observe/log.js';

/** How old a resident-size sample may be before the next DATA/RETR reads a new one. */
export const RESIDENT_SAMPLE_INTERVAL_MS = 100;

let sampledAt = Number.NEGATIVE_INFINITY;
let sampledBytes = 0;

/** The process's resident bytes when they are over `budgetBytes` (0: no budget), else undefined. */
export function overMemoryBudget(budgetBytes: number): number | undefined {
  if (budgetBytes === 0) return undefined;
  const now = performance.now();
  if (now - sampledAt >= RESIDENT_SAMPLE_INTERVAL_MS) {
    sampledBytes = process.memoryUsage.rss();
    sampledAt = now;
  }
  return sampledBytes > budgetBytes ? sampledBytes : undefined;
}

/**
 * The check both dialects make before taking a payload: true, with the warning logged,
 * when the process is over `budgetBytes` (limits.max_process_memory_bytes) and the
 * payload (`DATA`, `retrieval`) is to be tempfailed.
 */
export function refuseOverMemoryBudget(budgetBytes: number, log: Logger, payload: 'DATA' | 'retrieval'): boolean {
  const resident = overMemoryBudget(budgetBytes);
  if (resident === undefined) return false;
  log.warn({ residentBytes: resident, budgetBytes }, `process over limits.max_process_memory_bytes: ${payload} tempfailed`);
  return true;
}
