/**
 * A map over items with at most `concurrency` calls in flight, results in item
 * order: the parts of one message are classified side by side, so that archive
 * tools running as subprocesses overlap, without starting one per part at once.
 */
export async function mapBounded<T, R>(items: readonly T[], concurrency: number, map: (item: T) => Promise<R>): Promise<R[]> {
  // One item (a single-part message): no workers to share it.
  if (items.length === 1) return [await map(items[0] as T)];
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await map(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
