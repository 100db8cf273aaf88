/**
 * Paths into ../shared/corpora (public, permissively licensed messages; each
 * folder keeps its SOURCE.txt and LICENSE). A missing corpus is a clear failure.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const CORPORA = resolve(process.env.MAILMOAT_CORPORA ?? join(process.cwd(), '..', 'shared', 'corpora'));

export function corpusFile(relative: string): string {
  const path = join(CORPORA, relative);
  if (!existsSync(path)) throw new Error(`corpus file ${path} is missing: clone the project with ../shared beside it or set MAILMOAT_CORPORA`);
  return path;
}
