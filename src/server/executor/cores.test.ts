import { describe, expect, it } from 'vitest';
import { CoreSets } from './cores.js';

describe('CoreSets', () => {
  it('gives each pinned session the least used cores, not always the first ones', () => {
    const cores = new CoreSets(4);
    const a = cores.take(2);
    const b = cores.take(2);
    expect(a).toEqual([0, 1]);
    expect(b).toEqual([2, 3]);
    cores.release(a);
    expect(cores.take(1)).toEqual([0]);
    // The free core first (1), then the first of those shared least.
    expect(cores.take(2)).toEqual([0, 1]);
  });
});
