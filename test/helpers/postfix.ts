/**
 * A real Postfix MTA for a test (bench/postfix.ts: STARTTLS on a free loopback
 * port, optionally implicit TLS on a second one, relaying everything to the given
 * port, normally a SmtpSink), stopped and removed when the test ends.
 */
import type { Test } from 'tap';
import { startPostfix, type PostfixOptions, type RunningPostfix } from '../../bench/postfix.js';

export type { PostfixOptions, RunningPostfix };

export async function startTestPostfix(t: Test, options: PostfixOptions): Promise<RunningPostfix> {
  const postfix = await startPostfix(options);
  t.teardown(() => postfix.stop());
  return postfix;
}
