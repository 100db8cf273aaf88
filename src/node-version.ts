/**
 * The Node.js versions mailmoat runs on: 20.15 and later 20.x, 22.2 and later (node:zlib
 * crc32 appeared in 20.15.0 and 22.2.0). This module imports nothing, so that bin.ts can
 * load it on any Node and explain instead of crashing.
 */

/** Why this Node.js version cannot run mailmoat, or undefined when it can. */
export function nodeVersionProblem(version: string): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if ((major === 20 && minor >= 15) || (major === 22 && minor >= 2) || major >= 23) return undefined;
  return `needs Node.js 20.15 or later (22.2 or later on 22), not ${version}: install a current Node.js LTS (nodejs.org, or the NodeSource packages on Debian 12, whose own nodejs is 18)`;
}
