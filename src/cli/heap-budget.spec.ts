import { HeapBudget, type HeapProbe, v8HeapProbe } from './heap-budget.js';

const MIB = 1024 * 1024;

/** A heap whose readings the test sets; collect() drops it to `live`. */
class FakeHeap implements HeapProbe {
  used = 100 * MIB;
  live = 100 * MIB;
  collections = 0;
  usedBytes(): number {
    return this.used;
  }
  collect(): void {
    this.collections += 1;
    this.used = this.live;
  }
}

describe('HeapBudget', () => {
  it('collects only once the heap has grown the budget past what the last collection left', () => {
    const heap = new FakeHeap();
    const budget = new HeapBudget(32 * MIB, heap);
    heap.used = 132 * MIB;
    expect(budget.check()).toBe(false);
    heap.used = 133 * MIB;
    expect(budget.check()).toBe(true);
    expect(heap.collections).toBe(1);
    // The ceiling is measured from what the last collection left (100 MiB live: 132 MiB again).
    heap.used = 131 * MIB;
    expect(budget.check()).toBe(false);
    heap.live = 120 * MIB;
    heap.used = 140 * MIB;
    expect(budget.check()).toBe(true);
    expect(heap.used).toBe(120 * MIB);
    // More live data after that collection: the next one waits until 120 + 32 MiB.
    heap.used = 152 * MIB;
    expect(budget.check()).toBe(false);
    heap.used = 153 * MIB;
    expect(budget.check()).toBe(true);
    expect(heap.collections).toBe(3);
  });
});

describe('v8HeapProbe', () => {
  it('reaches a real full collection: released arrays leave the heap at once', () => {
    const probe = v8HeapProbe();
    let garbage: number[][] | undefined = Array.from({ length: 100 }, () => new Array<number>(100_000).fill(1.5));
    // Not through expect(): jest keeps the values it was given, which would keep the arrays alive.
    const peak = probe.usedBytes();
    expect(garbage.length).toBe(100);
    // eslint-disable-next-line no-useless-assignment -- dropping the last reference is the point: the collection must find the arrays unreachable.
    garbage = undefined;
    probe.collect();
    expect(probe.usedBytes()).toBeLessThan(peak - 48 * MIB);
  });
});
