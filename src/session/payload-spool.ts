/**
 * Where a captured payload (SMTP DATA, POP3 RETR/TOP to inspect) is held, built the same way
 * for both dialects from the policy: memory up to spool.memory_threshold_bytes, then a 0600
 * temporary file in the listener's spool directory (capture/spool.ts).
 */
import { Spool } from '../capture/spool.js';
import type { Policy } from '../config/schema.js';

export function payloadSpool(dir: string, policy: Pick<Policy, 'spool'>): Spool {
  return new Spool({ dir, memoryThresholdBytes: policy.spool.memory_threshold_bytes });
}
