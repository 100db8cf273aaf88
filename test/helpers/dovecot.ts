/**
 * A real Dovecot POP3 server for a test (bench/dovecot.ts starts it on a free
 * loopback port with the given users and Maildir messages, and with `tls` also
 * STLS and a pop3s port), stopped and removed when the test ends.
 */
import type { Test } from 'tap';
import { startDovecot, type DovecotOptions, type DovecotUser, type RunningDovecot } from '../../bench/dovecot.js';

export type { DovecotOptions, DovecotUser, RunningDovecot };

export async function startTestDovecot(t: Test, users: DovecotUser[], options: DovecotOptions = {}): Promise<RunningDovecot> {
  const dovecot = await startDovecot(users, options);
  t.teardown(() => dovecot.stop());
  return dovecot;
}
