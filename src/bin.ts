#!/usr/bin/env node
/**
 * The `mailmoat` command: checks the Node.js version before loading anything else (an
 * older Node would fail while linking the modules, with an error about a missing export
 * instead of this message), then runs the command line (cli.ts). The floor is set by
 * node:zlib crc32 (the demo's ZIP samples): Node 20.15, or 22.2 on the 22 line; keep it in
 * step with package.json "engines" and scripts/postinstall.mjs.
 */
import { nodeVersionProblem } from './node-version.js';

const problem = nodeVersionProblem(process.versions.node);
if (problem === undefined) {
  await import('./cli.js');
} else {
  process.stderr.write(`mailmoat: ${problem}\n`);
  process.exitCode = 1;
}
