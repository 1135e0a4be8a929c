import v8 from 'node:v8';
import { setTimeout as sleep } from 'node:timers/promises';
import { limitHeapGrowth } from './heap-budget.js';

const MIB = 1024 * 1024;
const used = () => v8.getHeapStatistics().used_heap_size;

describe('limitHeapGrowth', () => {
  it('collects garbage once the heap grows past the budget, without being asked', async () => {
    const stop = limitHeapGrowth(16, 10);
    try {
      const before = used();
      // About 80 MB of arrays that become garbage at once; nothing else allocates afterwards, so
      // V8 itself has no reason to collect them during the wait below.
      let garbage: number[][] | undefined = Array.from({ length: 100 }, () => new Array<number>(100_000).fill(1.5));
      expect(used()).toBeGreaterThan(before + 64 * MIB);
      garbage = undefined;
      await sleep(300);
      expect(garbage).toBeUndefined();
      expect(used()).toBeLessThan(before + 32 * MIB);
    } finally {
      stop();
    }
  });
});
