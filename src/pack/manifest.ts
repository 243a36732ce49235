import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import pMap from 'p-map';
import { join } from 'node:path';
import type { ManifestEntry } from '../protocol/types.js';
import type { HashCache } from './hash-cache.js';
import type { IncludedFile } from './scan.js';

/** Small files are read in one call; many at a time, since per-file latency dominates. */
const SMALL_FILE = 1024 * 1024;
const HASH_CONCURRENCY = 16;

/**
 * Small files read for hashing, kept for the send that follows, up to a memory budget: on this
 * kind of disk opening a file costs more than reading it, and a first upload would otherwise
 * open every file twice. What is kept is exactly what was hashed, so it is what gets sent.
 */
export class ReadCache {
  private used = 0;
  private readonly files = new Map<string, Buffer>();

  constructor(private readonly budget = READ_CACHE_BYTES) {}

  keep(path: string, data: Buffer): void {
    if (this.used + data.length > this.budget) return;
    this.files.set(path, data);
    this.used += data.length;
  }

  take(path: string): Buffer | undefined {
    const data = this.files.get(path);
    if (data) {
      this.files.delete(path);
      this.used -= data.length;
    }
    return data;
  }
}

const READ_CACHE_BYTES = 128 * 1024 * 1024;

async function sha256File(file: string, size: bigint, path: string, kept?: ReadCache): Promise<string> {
  const hash = createHash('sha256');
  if (size <= SMALL_FILE) {
    const data = await readFile(file);
    kept?.keep(path, data);
    return hash.update(data).digest('hex');
  }
  for await (const chunk of createReadStream(file, { highWaterMark: SMALL_FILE })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Stamped again just before reading, so what the cache records describes what was hashed. */
async function hashNow(root: string, f: IncludedFile, cache: HashCache | undefined, kept?: ReadCache): Promise<ManifestEntry> {
  const abs = join(root, f.readFrom ?? f.path);
  const st = await lstat(abs, { bigint: true });
  const sha256 = await sha256File(abs, st.size, f.path, kept);
  cache?.set(f.path, { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev }, sha256);
  return { path: f.path, size: Number(st.size), mode: f.mode, sha256 };
}

export interface ManifestProgress {
  /** Files whose hash came from the cache, and files read and hashed now. */
  cached: number;
  hashed: number;
  hashedBytes: number;
}

/**
 * Hashes every included file, through the hash cache when one is given: an unchanged file is
 * not read. The size in the manifest is what the file has now, so a file that changed since
 * the scan is described as it is. The manifest keeps the scan's order.
 */
export async function buildManifest(
  root: string,
  files: IncludedFile[],
  cache?: HashCache,
  onFile?: (p: ManifestProgress) => void,
  kept?: ReadCache,
): Promise<ManifestEntry[]> {
  const progress: ManifestProgress = { cached: 0, hashed: 0, hashedBytes: 0 };
  return pMap(
    files,
    async (f): Promise<ManifestEntry> => {
      const cached = cache?.get(f.path, f.stamp);
      const entry = cached ? { path: f.path, size: f.size, mode: f.mode, sha256: cached } : await hashNow(root, f, cache, kept);
      if (cached) progress.cached += 1;
      else {
        progress.hashed += 1;
        progress.hashedBytes += entry.size;
      }
      onFile?.(progress);
      return entry;
    },
    { concurrency: HASH_CONCURRENCY },
  );
}
