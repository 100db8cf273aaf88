// limits.max_process_memory_bytes: the resident size is sampled (at most once per
// RESIDENT_SAMPLE_INTERVAL_MS) and compared with the budget; 0 means no budget.
import t from 'tap';
import { overMemoryBudget } from '../../src/session/memory-budget.js';

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
