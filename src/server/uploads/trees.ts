import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, linkSync, mkdirSync } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ManifestEntry } from '../../protocol/types.js';

const EXEC_MODE = 0o755;

/** Files laid out per turn of the event loop: synchronous links are ~15 µs, the async ones ~100 µs. */
const LAYOUT_BATCH = 256;

/**
 * Makes the folders the manifest's files need under `dest` (the paths' ancestors, parents
 * first), then places each file with synchronous calls, a batch per turn of the event loop so
 * the server keeps answering. Returns the folders made.
 */
async function placeFiles(dest: string, manifest: ManifestEntry[], place: (f: ManifestEntry, file: string) => void): Promise<string[]> {
  const dirs = new Set<string>();
  for (const f of manifest) {
    for (let d = dirname(f.path); d !== '.' && !dirs.has(d); d = dirname(d)) dirs.add(d);
  }
  const made = [...dirs].sort().map((d) => join(dest, d));
  for (const dir of made) mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (let i = 0; i < manifest.length; i += LAYOUT_BATCH) {
    for (const f of manifest.slice(i, i + LAYOUT_BATCH)) place(f, join(dest, f.path));
    await new Promise((resolve) => setImmediate(resolve));
  }
  return made;
}

/**
 * Lays the manifest's files out from the stored contents into `dest`: hard links to the
 * contents (the tree is never written to), copies for executables (a mode of their own). In a
 * hidden sibling folder first, renamed into place only when complete, so nothing
 * half-laid-out is ever used. A `dest` that already exists is the same tree.
 */
export async function layOut(dest: string, manifest: ManifestEntry[], contentPath: (sha256: string) => string): Promise<void> {
  const staging = join(dirname(dest), `.partial-${randomBytes(6).toString('hex')}`);
  await mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    await placeFiles(staging, manifest, (f, file) => {
      if (f.mode & 0o111) {
        copyFileSync(contentPath(f.sha256), file);
        chmodSync(file, EXEC_MODE);
      } else {
        linkOrCopy(contentPath(f.sha256), file);
      }
    });
    await chmod(staging, 0o755);
    await rename(staging, dest).catch(async (err: NodeJS.ErrnoException) => {
      // Laid out meanwhile by an upload of the same tree: that one serves.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      await rm(staging, { recursive: true, force: true });
    });
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/**
 * A hard link, or a copy when the content already has as many links as the file system allows
 * (65,000 on ext4: an empty `__init__.py` is one content for every project).
 */
function linkOrCopy(src: string, dest: string): void {
  try {
    linkSync(src, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EMLINK') throw err;
    copyFileSync(src, dest);
  }
}

/**
 * A session's work folder from a laid-out tree, for a session that runs as its own uid (a
 * root server): hard links to the tree's files, which belong to root and are 0644 or 0755, so
 * the code can read, run, delete and replace them but never write into them (they are the
 * store's contents); the executor gives its folders to the session's uid when it starts, so
 * the code can write beside them. Costs a link per file instead of a copy.
 */
export async function linkWorkFolder(tree: string, dest: string, manifest: ManifestEntry[]): Promise<void> {
  await mkdir(dest, { recursive: true, mode: 0o755 });
  await placeFiles(dest, manifest, (f, file) => linkOrCopy(join(tree, f.path), file));
}

/**
 * A writable copy of a laid-out tree (a session's work folder), by coreutils' cp: per-file
 * system calls from C cost a fraction of Node's thread-pool round trips (0.3 s against 2 s for
 * 5,000 files here). Hard links are not kept: every file of the copy is its own.
 */
export async function copyTree(src: string, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  await new Promise<void>((resolve, reject) => {
    execFile('cp', ['-R', '--preserve=mode', `${src}/.`, dest], (err, _stdout, stderr) =>
      err ? reject(new Error(`copying the code failed: ${stderr.trim() || err.message}`)) : resolve(),
    );
  });
}

export { treeKey } from '../../protocol/tree-key.js';
