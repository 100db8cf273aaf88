/**
 * A bounded run of an archive tool (7zz, bsdtar, xz, bzip2) as a subprocess:
 * its output is handed on chunk by chunk and the process is killed (SIGKILL,
 * by its own pid) when the output passes `maxOutputBytes`, when the deadline
 * passes, or when the reader says it has seen enough. Nothing is written to
 * disk by the tool: archives are only listed or extracted to standard output.
 * Standard input is the archive bytes, or closed, so a password prompt ends.
 */
import { spawn } from 'node:child_process';

export type ToolEnd =
  | { kind: 'exited'; code: number; stderr: string }
  | { kind: 'stopped' }
  | { kind: 'timeout' }
  | { kind: 'too-much-output' }
  | { kind: 'not-installed'; tool: string }
  | { kind: 'failed'; message: string };

export interface ToolRun {
  command: string;
  args: readonly string[];
  input?: Buffer;
  maxOutputBytes: number;
  /** Epoch milliseconds. */
  deadline: number;
  /** Receives the output in order; returns false to stop the tool (the reader has what it needs). */
  onOutput(chunk: Buffer): boolean;
}

/** What is kept of the tool's error output (for the finding's reason). */
const MAX_STDERR_BYTES = 4096;

export function runTool(run: ToolRun): Promise<ToolEnd> {
  return new Promise((resolve) => {
    const remaining = run.deadline - Date.now();
    if (remaining <= 0) {
      resolve({ kind: 'timeout' });
      return;
    }
    const child = spawn(run.command, run.args, { stdio: [run.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } });
    let ended: ToolEnd | undefined;
    let output = 0;
    const stderr: Buffer[] = [];
    let stderrBytes = 0;
    const stop = (end: ToolEnd): void => {
      if (ended !== undefined) return;
      ended = end;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => stop({ kind: 'timeout' }), remaining);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (ended !== undefined) return;
      output += chunk.length;
      if (output > run.maxOutputBytes) stop({ kind: 'too-much-output' });
      else if (!run.onOutput(chunk)) stop({ kind: 'stopped' });
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderrBytes < MAX_STDERR_BYTES) stderr.push(chunk);
      stderrBytes += chunk.length;
    });
    child.stdin?.on('error', () => undefined);
    if (child.stdin !== null && run.input !== undefined) child.stdin.end(run.input);
    child.once('error', (error: NodeJS.ErrnoException) => {
      stop(error.code === 'ENOENT' ? { kind: 'not-installed', tool: run.command } : { kind: 'failed', message: error.message });
      clearTimeout(timer);
      if (ended !== undefined) resolve(ended);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve(ended ?? { kind: 'exited', code: code ?? -1, stderr: Buffer.concat(stderr).toString('latin1').slice(0, MAX_STDERR_BYTES) });
    });
  });
}
