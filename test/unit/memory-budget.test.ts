// limits.max_process_memory_bytes: the resident size is sampled (at most once per
// RESIDENT_SAMPLE_INTERVAL_MS) and compared with the budget; 0 means no budget.
import t from 'tap';
import { Writable } from 'node:stream';
import { overMemoryBudget, refuseOverMemoryBudget } from '../../src/session/memory-budget.js';
import { createLogger } from '../../src/observe/log.js';

t.test('no budget: never over', async (t) => {
  t.equal(overMemoryBudget(0), undefined);
});

t.test('a budget below the resident size is over it, with the resident size', async (t) => {
  const resident = overMemoryBudget(1);
  t.type(resident, 'number');
  t.ok((resident ?? 0) > 1024 * 1024, 'a plausible resident size');
  t.equal(overMemoryBudget(1), resident, 'the same sample within the interval');
});

t.test('a budget above the resident size is not over it', async (t) => {
  t.equal(overMemoryBudget(Number.MAX_SAFE_INTEGER), undefined);
});

t.test('refuseOverMemoryBudget: over the budget it refuses and logs the one warning, under it stays quiet', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger(
    'debug',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    }),
  );
  t.equal(refuseOverMemoryBudget(Number.MAX_SAFE_INTEGER, log, 'DATA'), false);
  t.equal(refuseOverMemoryBudget(0, log, 'DATA'), false, 'no budget');
  t.same(lines, [], 'nothing logged');
  t.equal(refuseOverMemoryBudget(1, log, 'retrieval'), true);
  t.equal(lines.length, 1);
  t.match(lines[0], { level: 40, budgetBytes: 1, residentBytes: Number, msg: 'process over limits.max_process_memory_bytes: retrieval tempfailed' });
});
