/**
 * A real Dovecot POP3 server for a test (bench/dovecot.ts starts it on a free
 * loopback port with the given users and Maildir messages), stopped and removed
 * when the test ends.
 */
import type { Test } from 'tap';
import { startDovecot, type DovecotUser, type RunningDovecot } from '../../bench/dovecot.js';

export type { DovecotUser, RunningDovecot };

export async function startTestDovecot(t: Test, users: DovecotUser[]): Promise<RunningDovecot> {
  const dovecot = await startDovecot(users);
  t.teardown(() => dovecot.stop());
  return dovecot;
}
