/**
 * The packed package, as an administrator gets it: `npm pack` of this checkout (the
 * built dist/ as it is: the tests run after the build) into a temporary folder, and npm
 * and mailmoat commands run with an environment free of the test runner's npm_* settings.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without npm's per-run variables (npm_config_prefix and the like from `npx tap`). */
const cleanEnv = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));

export function run(command: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

export interface Packed {
  dir: string;
  tarball: string;
  files: string[];
}

/** `npm pack` into a fresh folder (removed when the test ends). */
export async function pack(t: Test): Promise<Packed> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmoat-pack-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // --ignore-scripts: `prepare` would rebuild dist/, which the test run already built.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], process.cwd());
  if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const [entry] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  if (entry === undefined) throw new Error('npm pack reported nothing');
  return { dir, tarball: join(dir, entry.filename), files: entry.files.map((file) => file.path) };
}

/** A policy for the installed command: an original-destination gateway, quarantine in `dir`. */
export const gatewayPolicy = (dir: string): string =>
  `listeners:\n  - protocol: smtp\n    listen: 0.0.0.0:2525\n    upstream: original-destination\nquarantine:\n  dir: ${join(dir, 'quarantine')}\n`;
