/**
 * Paths into ../shared/corpora (public, permissively licensed messages; each
 * folder keeps its SOURCE.txt and LICENSE). A missing corpus is a clear failure.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const CORPORA = resolve(process.env.MAILMOAT_CORPORA ?? join(process.cwd(), '..', 'shared', 'corpora'));

export function corpusFile(relative: string): string {
  const path = join(CORPORA, relative);
  if (!existsSync(path)) throw new Error(`corpus file ${path} is missing: clone the project with ../shared beside it or set MAILMOAT_CORPORA`);
  return path;
}

/** The message files of the corpora (RFC 5322 messages, whatever their file extension). */
export function corpusMessages(): string[] {
  const roots: [string, RegExp][] = [
    ['rspamd/test/functional/messages', /\.eml$/],
    ['mailsplit/test/fixtures', /\.eml$/],
    ['mailparser/test/fixtures', /\.eml$/],
    ['python-email-testdata', /msg_\d+\.txt$/],
    ['mime4j', /\.msg$/],
    ['MimeKit', /\.(eml|msg)$/],
    ['haraka-email-message', /\.eml$/],
  ];
  const files: string[] = [];
  const walk = (dir: string, pattern: RegExp): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path, pattern);
      else if (pattern.test(entry)) files.push(path);
    }
  };
  for (const [root, pattern] of roots) walk(join(CORPORA, root), pattern);
  return files.sort();
}
