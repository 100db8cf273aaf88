/**
 * The installed package's root folder (where policies/ lives), found by walking
 * up from this module: the same answer from src/ (tests) and dist/src/ (the CLI).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'mailmoat') return dir;
    if (dirname(dir) === dir) throw new Error('mailmoat: cannot find the package root (package.json named "mailmoat")');
  }
}

export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
export const DEFAULT_POLICY_FILE = join(PACKAGE_ROOT, 'policies', 'default.yaml');
export const DEFAULT_EXECUTABLE_LIST = join(PACKAGE_ROOT, 'policies', 'executables.txt');
