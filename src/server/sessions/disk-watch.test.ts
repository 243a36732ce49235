import { linkSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diskUse, watchDisk } from './disk-watch.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'khd-disk-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const MB = 1024 * 1024;

describe('diskUse', () => {
  it('counts what is allocated: a hard link once, a sparse file by what it holds, a missing path as 0', async () => {
    writeFileSync(join(dir, 'a'), Buffer.alloc(4 * MB, 1));
    linkSync(join(dir, 'a'), join(dir, 'b'));
    writeFileSync(join(dir, 'sparse'), '');
    truncateSync(join(dir, 'sparse'), 1024 * MB);
    const used = await diskUse([dir, join(dir, 'missing')]);
    expect(used).toBeGreaterThanOrEqual(4 * MB);
    expect(used).toBeLessThan(5 * MB);
  });
});

describe('watchDisk', () => {
  it('calls onOver once when the folders pass the limit, and not after it is stopped', async () => {
    const over: number[] = [];
    const stop = watchDisk([dir], 2 * MB, 20, (used) => over.push(used), (err) => over.push(-1, err.message.length));
    await new Promise((r) => setTimeout(r, 100));
    expect(over).toEqual([]);
    writeFileSync(join(dir, 'big'), Buffer.alloc(3 * MB, 1));
    for (let i = 0; i < 100 && over.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    writeFileSync(join(dir, 'bigger'), Buffer.alloc(3 * MB, 1));
    await new Promise((r) => setTimeout(r, 150));
    expect(over).toHaveLength(1);
    expect(over[0]).toBeGreaterThan(2 * MB);
    stop();
  });

  it('reports a measurement that fails once, not every tick, and keeps trying', async () => {
    const errors: string[] = [];
    let calls = 0;
    const stop = watchDisk([dir], MB, 10, () => errors.push('over'), (err) => errors.push(err.message), async () => {
      calls += 1;
      throw new Error('du: not found');
    });
    await new Promise((r) => setTimeout(r, 120));
    stop();
    expect(calls).toBeGreaterThan(3);
    expect(errors).toEqual(['du: not found']);
  });
});
