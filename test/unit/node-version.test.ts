// The Node.js floor (node:zlib crc32: 20.15.0 and 22.2.0): older versions get a message, not
// a crash while linking modules. The message is what src/bin.ts prints before loading the CLI.
import t from 'tap';
import { nodeVersionProblem } from '../../src/node-version.js';

t.test('the floor', async (t) => {
  for (const version of ['20.15.0', '20.20.2', '22.2.0', '22.11.0', '24.1.0']) t.equal(nodeVersionProblem(version), undefined, `${version} runs`);
  for (const version of ['18.19.0', '20.14.0', '21.7.3', '22.1.0']) t.match(nodeVersionProblem(version), new RegExp(`needs Node\\.js 20\\.15 or later .*not ${version.replaceAll('.', '\\.')}`), `${version} is refused`);
  t.equal(nodeVersionProblem(process.versions.node), undefined, 'the running Node is supported');
});
