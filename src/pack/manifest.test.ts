import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../protocol/types.js';
import { entriesFromCache, hashEntries, ReadCache } from './manifest.js';
import type { IncludedFile } from './scan.js';
import { scanProject } from './scan.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'khd-manifest-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const MB = 1024 * 1024;

/** Every file hashed, as a cold cache's `khd run` hashes those the server asks for. */
async function hashAll(files: IncludedFile[], kept?: ReadCache): Promise<ManifestEntry[]> {
  const entries = entriesFromCache(files);
  await hashEntries(root, files, entries, undefined, undefined, kept);
  return entries as ManifestEntry[];
}
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

// 96 MB of large files: past the point where they are hashed on a second thread.
function bigProject(): Record<string, Buffer> {
  const files: Record<string, Buffer> = { 'main.py': Buffer.from('print(1)\n') };
  for (let i = 0; i < 3; i++) files[`weights/w${i}.bin`] = Buffer.alloc(32 * MB, i + 1);
  for (let i = 0; i < 50; i++) files[`src/m${i}.py`] = Buffer.from(`x = ${i}\n`);
  execFileSync('mkdir', ['-p', join(root, 'weights'), join(root, 'src')]);
  for (const [path, data] of Object.entries(files)) writeFileSync(join(root, path), data);
  return files;
}

describe('hashEntries with large files on a second thread', () => {
  it('hashes every file as the main thread would, in the scan’s order, with each file’s stamp', async () => {
    const files = bigProject();
    const scan = await scanProject(root, { useIgnoreRules: true });
    // Its clock an hour ahead, so no file counts as racily clean.
    const kept = new ReadCache(undefined, () => BigInt(Date.now() + 3_600_000) * 1_000_000n);
    const manifest = await hashAll(scan.included, kept);
    expect(manifest.map((m) => m.path)).toEqual(scan.included.map((f) => f.path));
    for (const m of manifest) expect(m.sha256, m.path).toBe(sha(files[m.path]!));
    const st = statSync(join(root, 'weights/w1.bin'), { bigint: true });
    expect(kept.stampOf('weights/w1.bin')).toEqual({ size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev });
    // Hashed within the clock's tick of its last change (racily clean): no stamp, so it is hashed again when sent.
    const racy = new ReadCache(undefined, () => st.ctimeNs + 1n);
    await hashAll(scan.included, racy);
    expect(racy.stampOf('weights/w1.bin')).toBeUndefined();
  });

  it('refuses a large file replaced by a FIFO since the scan, without waiting on it', async () => {
    bigProject();
    const scan = await scanProject(root, { useIgnoreRules: true });
    rmSync(join(root, 'weights/w2.bin'));
    execFileSync('mkfifo', [join(root, 'weights/w2.bin')]);
    await expect(hashAll(scan.included)).rejects.toThrow('weights/w2.bin is no longer a regular file');
  });

  it('names a large file that vanished since the scan', async () => {
    bigProject();
    const scan = await scanProject(root, { useIgnoreRules: true });
    rmSync(join(root, 'weights/w0.bin'));
    await expect(hashAll(scan.included)).rejects.toThrow(/ENOENT/);
  });
});
