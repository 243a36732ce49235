import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

/** What a file looked like when it was hashed: any change to it changes one of these. */
export interface FileStamp {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
}

interface Entry {
  stamp: string;
  sha256: string;
}

type CacheFile = Record<string, { usedAt: number; files: Record<string, Entry> }>;

/** A stamp this close to the time of hashing may be followed by a change within the same tick. */
export const RACY_WINDOW_NS = 2_000_000_000n;
const MAX_ROOTS = 32;

/** Whether a file stamped so is "racily clean" at `hashedAtNs`: a change in the same clock tick would leave its stamp as it is. */
export function isRacy(stamp: FileStamp, hashedAtNs: bigint): boolean {
  const newest = stamp.mtimeNs > stamp.ctimeNs ? stamp.mtimeNs : stamp.ctimeNs;
  return hashedAtNs - newest < RACY_WINDOW_NS;
}

const stampKey = (s: FileStamp) => `${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.ino}:${s.dev}`;

/**
 * sha256 per file, keyed by path, size, mtime, ctime, inode and device (the idea of git's
 * index), so an unchanged tree is not read again. ctime is in the key because no tool can set
 * it back: a file rewritten with its old size and mtime restored still misses. A file stamped
 * within RACY_WINDOW_NS of its hashing is not cached (it could change again in the same tick),
 * as git treats "racily clean" entries. The server checks every content anyway.
 */
export class HashCache {
  private data: CacheFile;
  private readonly fresh: Record<string, Entry> = {};
  /** Whether this run hashed anything anew (else the file would be written back as it was). */
  private hashed = false;

  constructor(
    private readonly file: string,
    private readonly root: string,
    private readonly nowNs: () => bigint = () => BigInt(Date.now()) * 1_000_000n,
  ) {
    try {
      this.data = JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
    } catch {
      this.data = {};
    }
  }

  get(path: string, stamp: FileStamp): string | undefined {
    const entry = this.data[this.root]?.files[path];
    if (entry?.stamp !== stampKey(stamp)) return undefined;
    this.fresh[path] = entry;
    return entry.sha256;
  }

  set(path: string, stamp: FileStamp, sha256: string, hashedAtNs: bigint = this.nowNs()): void {
    this.hashed = true;
    if (isRacy(stamp, hashedAtNs)) return;
    this.fresh[path] = { stamp: stampKey(stamp), sha256 };
  }

  /** Keeps this run's entries for the root (files gone from the tree drop out) and the most recent other roots. */
  /**
   * Writes the cache, unless this run found every file in it and no file has gone: an unchanged
   * tree costs no write (its root's last use is then not moved up: at worst, after MAX_ROOTS other
   * projects, it is hashed anew).
   */
  async save(): Promise<void> {
    const stored = this.data[this.root]?.files;
    if (!this.hashed && stored && Object.keys(stored).length === Object.keys(this.fresh).length) return;
    const { default: writeFileAtomic } = await import('write-file-atomic');
    const roots = Object.entries(this.data)
      .filter(([root]) => root !== this.root)
      .sort((a, b) => b[1].usedAt - a[1].usedAt)
      .slice(0, MAX_ROOTS - 1);
    const out: CacheFile = Object.fromEntries([...roots, [this.root, { usedAt: Number(this.nowNs() / 1_000_000n), files: this.fresh }]]);
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file, JSON.stringify(out), { mode: 0o600 });
  }
}
