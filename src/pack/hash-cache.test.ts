import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTree } from '../../test/helpers/tree.js';
import { HashCache, RACY_WINDOW_NS } from './hash-cache.js';
import { entriesFromCache, hashEntries } from './manifest.js';
import { scanProject } from './scan.js';

let dir: string;
let tree: ReturnType<typeof makeTree>;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'khd-cache-'));
  tree = makeTree({ 'main.py': 'print(1)\n', 'data.bin': 'aaaa' });
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  tree.cleanup();
});

// The cache's clock runs an hour ahead, so nothing written by the test counts as racy.
const later = () => BigInt(Date.now() + 3_600_000) * 1_000_000n;

async function manifestRun() {
  const cache = new HashCache(join(dir, 'cache.json'), tree.root, later);
  const scan = await scanProject(tree.root, { useIgnoreRules: true });
  let progress = { cached: 0, hashed: 0, hashedBytes: 0 };
  const manifest = entriesFromCache(scan.included, cache);
  await hashEntries(tree.root, scan.included, manifest, cache, (p) => (progress = { ...p }));
  await cache.save();
  return { manifest, progress };
}

const shaOf = (m: Awaited<ReturnType<typeof manifestRun>>['manifest'], path: string) => m.find((e) => e.path === path)!.sha256;

describe('HashCache', () => {
  it('does not read an unchanged tree again', async () => {
    const first = await manifestRun();
    expect(first.progress).toMatchObject({ cached: 0, hashed: 2 });
    const second = await manifestRun();
    expect(second.progress).toMatchObject({ cached: 2, hashed: 0, hashedBytes: 0 });
    expect(second.manifest).toEqual(first.manifest);
  });

  it('writes nothing back for an unchanged tree, and writes a changed one', async () => {
    await manifestRun();
    const file = join(dir, 'cache.json');
    const before = statSync(file).ino;
    await manifestRun();
    // Written atomically (a new file) when written at all: the same inode is the same file.
    expect(statSync(file).ino).toBe(before);
    writeFileSync(join(tree.root, 'main.py'), 'print(2)\n');
    utimesSync(join(tree.root, 'main.py'), new Date(), new Date(Date.now() + 5000));
    await manifestRun();
    expect(statSync(file).ino).not.toBe(before);
  });

  it('re-reads a touched but unchanged file, and finds the same hash', async () => {
    const first = await manifestRun();
    const file = join(tree.root, 'data.bin');
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const second = await manifestRun();
    expect(second.progress).toMatchObject({ cached: 1, hashed: 1 });
    expect(shaOf(second.manifest, 'data.bin')).toBe(shaOf(first.manifest, 'data.bin'));
  });

  it('never trusts an entry for a file rewritten with the same size and its old mtime restored', async () => {
    const file = join(tree.root, 'data.bin');
    const fixed = new Date('2026-01-01T00:00:00Z');
    utimesSync(file, fixed, fixed);
    const first = await manifestRun();
    writeFileSync(file, 'bbbb');
    utimesSync(file, fixed, fixed);
    expect(statSync(file).size).toBe(4);
    expect(statSync(file).mtimeMs).toBe(fixed.getTime());
    const second = await manifestRun();
    expect(second.progress.hashed).toBe(1);
    expect(shaOf(second.manifest, 'data.bin')).not.toBe(shaOf(first.manifest, 'data.bin'));
  });

  it('does not cache a file stamped within the racy window of its hashing', async () => {
    const cache = new HashCache(join(dir, 'cache.json'), tree.root);
    const st = statSync(join(tree.root, 'main.py'), { bigint: true });
    const stamp = { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev };
    cache.set('main.py', stamp, 'x'.repeat(64), st.ctimeNs + RACY_WINDOW_NS - 1n);
    cache.set('data.bin', stamp, 'y'.repeat(64), st.ctimeNs + RACY_WINDOW_NS);
    await cache.save();
    const saved = JSON.parse(readFileSync(join(dir, 'cache.json'), 'utf8'))[tree.root].files;
    expect(Object.keys(saved)).toEqual(['data.bin']);
  });

  it('drops files gone from the tree, and keeps other projects', async () => {
    await manifestRun();
    const other = new HashCache(join(dir, 'cache.json'), '/elsewhere', later);
    await other.save();
    rmSync(join(tree.root, 'data.bin'));
    await manifestRun();
    const saved = JSON.parse(readFileSync(join(dir, 'cache.json'), 'utf8'));
    expect(Object.keys(saved).sort()).toEqual(['/elsewhere', tree.root].sort());
    expect(Object.keys(saved[tree.root].files)).toEqual(['main.py']);
  });
});
