// Bounded memory whatever the nesting (issue 16.4): a 20 MB message whose payload sits under 19
// attached messages is inspected in a child process (dist/bench/nested-memory.js, built by
// `npm run build`); its peak resident set may exceed the resident set before the walk by at most
// WALK_BOUND_BYTES. Before attached messages were walked while decoded, this case took ~420 MB more.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';

/** The walk's own memory, whatever the nesting: generous (measured ~20 MB), far below the ~420 MB it took before. */
const WALK_BOUND_BYTES = 100 * 1024 * 1024;
const PROBE = join(process.cwd(), 'dist', 'bench', 'nested-memory.js');

t.test('a 20 MB message nested 19 deep is walked within the bound', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', PROBE, '20', '19', '1'], { maxBuffer: 1024 * 1024 });
  const result = JSON.parse(stdout) as { size: number; before: number; peak: number; verdicts: string[] };
  t.ok(result.size > 20 * 1024 * 1024, 'the message is over 20 MB');
  t.same(result.verdicts, ['pass'], 'it is walked to the end and passes (no program inside)');
  t.comment(`peak ${Math.round(result.peak / 1048576)} MB, ${Math.round((result.peak - result.before) / 1048576)} MB above the ${Math.round(result.before / 1048576)} MB before the walk`);
  t.ok(result.peak - result.before <= WALK_BOUND_BYTES, `the walk stays within ${WALK_BOUND_BYTES / 1048576} MB`);
});
