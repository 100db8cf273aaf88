/**
 * Whether a process id names a living process, for the sweeps that remove what a
 * killed mailmoat left behind (spool files, a managed clamd). kill(pid, 0) sends
 * nothing: ESRCH means no such process; EPERM means it exists under another user.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
