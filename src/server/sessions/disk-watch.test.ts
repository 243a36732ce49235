import { linkSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diskUse, DiskWatch, type DiskUse } from './disk-watch.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'khd-disk-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const MB = 1024 * 1024;
const HOUR = 3600 * 1000;

describe('diskUse', () => {
  it('counts what is allocated: a hard link once, a sparse file by what it holds, a missing path as 0; and the entries', async () => {
    writeFileSync(join(dir, 'a'), Buffer.alloc(4 * MB, 1));
    linkSync(join(dir, 'a'), join(dir, 'b'));
    writeFileSync(join(dir, 'sparse'), '');
    truncateSync(join(dir, 'sparse'), 1024 * MB);
    mkdirSync(join(dir, 'sub'));
    const used = await diskUse([dir, join(dir, 'missing')]);
    expect(used.bytes).toBeGreaterThanOrEqual(4 * MB);
    expect(used.bytes).toBeLessThan(5 * MB);
    // The folder itself, a (and b, the same inode), sparse, sub.
    expect(used.files).toBe(4);
  });
});

describe('DiskWatch', () => {
  it('calls onOver once when the folders pass the byte limit, and not after', async () => {
    const over: [string, DiskUse][] = [];
    let measured = 0;
    let used = { bytes: 0, files: 0 };
    const watch = new DiskWatch(dir, 20, (paths) => (measured++, diskUse(paths)), async () => used);
    const stop = watch.watch([dir], { maxBytes: 2 * MB, maxFiles: 1000 }, (what, use) => over.push([what, use]), (err) => over.push(['error', { bytes: err.message.length, files: 0 }]));
    writeFileSync(join(dir, 'big'), Buffer.alloc(3 * MB, 1));
    await expect.poll(() => over.length).toBe(1);
    expect(over[0]![0]).toBe('bytes');
    expect(over[0]![1].bytes).toBeGreaterThan(2 * MB);
    // Watching ended with the call: the file system filling fast, which measures every session
    // watched at once, measures nothing more.
    const before = measured;
    await watch.poll();
    used = { bytes: 1024 * MB, files: 0 };
    await watch.poll();
    expect(measured).toBe(before);
    expect(over).toHaveLength(1);
    stop();
  });

  it('calls onOver for too many files', async () => {
    const over: string[] = [];
    const stop = new DiskWatch(dir, 20).watch([dir], { maxBytes: 100 * MB, maxFiles: 50 }, (what) => over.push(what), () => {});
    for (let i = 0; i < 60; i++) writeFileSync(join(dir, `f${i}`), '');
    await expect.poll(() => over).toEqual(['files']);
    stop();
  });

  it('measures at once, not at the next periodic check, when the file system fills fast', async () => {
    const over: string[] = [];
    // The file system as this test says it is: other tests write to and delete from the real one.
    let used = { bytes: 10 * 1024 * MB, files: 1000 };
    // The periodic measurement is an hour away: only the file system's growth can call onOver.
    let measured = 0;
    const measure = (paths: string[]) => (measured++, diskUse(paths));
    const watch = new DiskWatch(dir, HOUR, measure, async () => used);
    const stop = watch.watch([dir], { maxBytes: 16 * MB, maxFiles: 1_000_000 }, (what) => over.push(what), () => {});
    // The first look sets where the file system starts from; growth under a step measures nothing.
    await watch.poll();
    writeFileSync(join(dir, 'big'), Buffer.alloc(20 * MB, 1));
    used = { bytes: used.bytes + MB / 2, files: 1001 };
    await watch.poll();
    expect(measured).toBe(0);
    used = { bytes: used.bytes + 20 * MB, files: 1001 };
    await watch.poll();
    expect(measured).toBe(1);
    await expect.poll(() => over).toEqual(['bytes']);
    stop();
  });

  it('reports a measurement that fails once, not every tick, and keeps trying', async () => {
    const errors: string[] = [];
    let calls = 0;
    const failing = async (): Promise<DiskUse> => {
      calls += 1;
      throw new Error('du: not found');
    };
    const stop = new DiskWatch(dir, 10, failing).watch([dir], { maxBytes: MB, maxFiles: 10 }, () => errors.push('over'), (err) => errors.push(err.message));
    await expect.poll(() => calls).toBeGreaterThan(3);
    stop();
    expect(errors).toEqual(['du: not found']);
  });
});
