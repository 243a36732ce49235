import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdirSync } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import type { ManifestEntry, UploadEntry } from '../../protocol/types.js';
import { placeContent } from './place.js';

/** Files laid out per turn of the event loop: synchronous links are ~15 µs, the async ones ~100 µs. */
const LAYOUT_BATCH = 256;

/** `work` on each item with synchronous calls, a batch per turn of the event loop, so the server keeps answering. */
async function inBatches<T>(items: T[], work: (item: T) => void): Promise<void> {
  for (let i = 0; i < items.length; i += LAYOUT_BATCH) {
    for (const item of items.slice(i, i + LAYOUT_BATCH)) work(item);
    await setImmediate();
  }
}

/**
 * Makes the folders the manifest's files need under `dest` (the paths' ancestors, parents
 * first), then places each of `files`, with synchronous calls, a batch per turn of the event
 * loop so the server keeps answering. Returns the folders made.
 */
async function placeFiles(
  dest: string,
  manifest: Pick<ManifestEntry, 'path'>[],
  files: ManifestEntry[],
  place: (f: ManifestEntry, file: string) => void,
  onFolders?: () => void,
): Promise<string[]> {
  const dirs = new Set<string>();
  for (const f of manifest) {
    for (let d = dirname(f.path); d !== '.' && !dirs.has(d); d = dirname(d)) dirs.add(d);
  }
  const made = [...dirs].sort().map((d) => join(dest, d));
  await inBatches(made, (dir) => mkdirSync(dir, { recursive: true, mode: 0o755 }));
  onFolders?.();
  await inBatches(files, (f) => place(f, join(dest, f.path)));
  return made;
}

/**
 * Lays the manifest's files out from the stored contents into `dest`: hard links to the
 * contents (the tree is never written to), copies for executables (a mode of their own). In a
 * hidden sibling folder first, renamed into place only when complete, so nothing
 * half-laid-out is ever used. A `dest` that already exists is the same tree.
 */
export async function layOut(dest: string, manifest: ManifestEntry[], contentPath: (sha256: string) => string): Promise<void> {
  const tree = new TreeBuilder(dirname(dest), manifest, contentPath);
  try {
    await tree.start(() => true);
    await tree.finish(dest);
  } catch (err) {
    await tree.abort();
    throw err;
  }
}

/**
 * A tree laid out while its contents arrive (an upload's body): its folders first and the files
 * whose contents are here already, then each file as soon as its content is stored, so the
 * links overlap the body instead of following it. An entry sent without a hash is placed when
 * its own content arrives (`claim`, `arrived`). `finish` places what is left and renames the hidden
 * folder into place (its name, the tree's key, may be known only then); `abort` removes it.
 */
export class TreeBuilder {
  private readonly staging: string;
  /** Files waiting for their content, by sha256; those sent without a hash, by path. */
  private readonly waiting = new Map<string, ManifestEntry[]>();
  private readonly waitingAt = new Map<string, UploadEntry>();
  /** Files whose content arrived before the folders were made, placed by finish. */
  private readonly arrivedEarly: ManifestEntry[] = [];
  private started: Promise<unknown> = Promise.resolve();
  /** Whether the folders are made: a content that arrives before stays waiting (finish places it). */
  private folders = false;

  constructor(
    parent: string,
    private readonly manifest: UploadEntry[],
    private readonly contentPath: (sha256: string) => string,
  ) {
    this.staging = join(parent, `.partial-${randomBytes(6).toString('hex')}`);
  }

  /**
   * Makes the folders, then places the files whose content `here` says is stored, a batch per
   * turn of the event loop (400 folders at once held other requests ~30 ms).
   */
  start(here: (sha256: string) => boolean): Promise<void> {
    mkdirSync(this.staging, { recursive: true, mode: 0o700 });
    const now: ManifestEntry[] = [];
    for (const f of this.manifest) {
      if (f.sha256 === undefined) this.waitingAt.set(f.path, f);
      else if (here(f.sha256)) now.push(f as ManifestEntry);
      else this.waiting.set(f.sha256, [...(this.waiting.get(f.sha256) ?? []), f as ManifestEntry]);
    }
    const placing = placeFiles(this.staging, this.manifest, now, (f, file) => this.placeOne(f, file), () => (this.folders = true)).then(() => undefined);
    this.started = placing.catch(() => {});
    return placing;
  }

  /**
   * The content `sha256` arrived for `entry` (one sent without a hash: that entry alone). Returns
   * the files to place from it now, taken off the waiting list: the caller places them (the
   * writer thread, right after writing the content). None while the folders are still being
   * made: finish places them.
   */
  claim(sha256: string, entry: UploadEntry): Placement[] {
    let files: ManifestEntry[];
    if (entry.sha256 === undefined) {
      const f = this.waitingAt.get(entry.path);
      if (!f) return [];
      this.waitingAt.delete(entry.path);
      files = [{ ...f, sha256 }];
      if (!this.folders) {
        this.arrivedEarly.push(files[0]!);
        return [];
      }
    } else {
      if (!this.folders) return [];
      files = this.waiting.get(sha256) ?? [];
      this.waiting.delete(sha256);
    }
    return files.map((f) => ({ file: join(this.staging, f.path), executable: (f.mode & 0o111) !== 0 }));
  }

  /** The content `sha256` is stored for `entry`: its files are placed now (or by finish). */
  arrived(sha256: string, entry: UploadEntry): void {
    for (const p of this.claim(sha256, entry)) placeContent(fs, this.contentPath(sha256), p.file, p.executable);
  }

  /** Places what is left and renames the tree to `dest`; one laid out there meanwhile by an upload of the same tree serves instead. */
  async finish(dest: string): Promise<void> {
    await this.started;
    if (this.waitingAt.size > 0) throw new Error(`the tree is not complete: '${[...this.waitingAt.keys()][0]}' has no content`);
    const left = [...this.waiting.values()].flat().concat(this.arrivedEarly.splice(0));
    this.waiting.clear();
    await inBatches(left, (f) => this.placeOne(f, join(this.staging, f.path)));
    await chmod(this.staging, 0o755);
    await rename(this.staging, dest).catch(async (err: NodeJS.ErrnoException) => {
      // Laid out meanwhile by an upload of the same tree: that one serves.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      await rm(this.staging, { recursive: true, force: true });
    });
  }

  async abort(): Promise<void> {
    await this.started;
    await rm(this.staging, { recursive: true, force: true });
  }

  private placeOne(f: ManifestEntry, file: string): void {
    placeContent(fs, this.contentPath(f.sha256), file, (f.mode & 0o111) !== 0);
  }
}

/** A file of a tree to place from a content, and whether it is executable (a copy of its own). */
export interface Placement {
  file: string;
  executable: boolean;
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
  await placeFiles(dest, manifest, manifest, (f, file) => placeContent(fs, join(tree, f.path), file, false));
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
