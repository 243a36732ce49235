import { createHash } from 'node:crypto';
import { type BigIntStats, closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import pMap from 'p-map';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import type { ManifestEntry, UploadEntry } from '../protocol/types.js';
import { isRacy, type FileStamp, type HashCache } from './hash-cache.js';
import type { HashWorker } from './hash-worker.js';
import type { IncludedFile } from './scan.js';

/** Small files are read in one call; many at a time, since per-file latency dominates. */
const SMALL_FILE = 1024 * 1024;
const HASH_CONCURRENCY = 16;

/**
 * Small files read for hashing, kept for the send that follows, up to a memory budget: on this
 * kind of disk opening a file costs more than reading it, and a first upload would otherwise
 * open every file twice. What is kept is exactly what was hashed, so it is what gets sent.
 * Also what each file looked like when its hash was made (its stamp): a file read again for
 * the send is checked against it instead of hashed again (ctime moves on every change).
 */
export class ReadCache {
  private used = 0;
  private readonly files = new Map<string, Buffer>();
  private readonly stamps = new Map<string, FileStamp>();

  /** What the file looked like when hashed, unless racily clean (a change in the same clock tick would leave it so): such a file is hashed again when sent. */
  stamp(path: string, stamp: FileStamp): void {
    if (!isRacy(stamp, this.nowNs())) this.stamps.set(path, stamp);
  }

  has(path: string): boolean {
    return this.files.has(path);
  }

  stampOf(path: string): FileStamp | undefined {
    return this.stamps.get(path);
  }

  constructor(
    private readonly budget = READ_CACHE_BYTES,
    private readonly nowNs: () => bigint = () => BigInt(Date.now()) * 1_000_000n,
  ) {}

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

/** Non-blocking, so a file replaced by a FIFO since the scan cannot hang the open. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

function mustBeFile(f: IncludedFile, st: BigIntStats): void {
  if (!st.isFile()) throw new Error(`${f.path} is no longer a regular file`);
}

function entryFor(f: IncludedFile, st: FileStamp, sha256: string, cache: HashCache | undefined, kept: ReadCache | undefined): ManifestEntry {
  const stamp = { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev };
  cache?.set(f.path, stamp, sha256);
  kept?.stamp(f.path, stamp);
  return { path: f.path, size: Number(st.size), mode: f.mode, sha256 };
}

/**
 * Hashes a small file with synchronous calls: open, stat, read and close cost a few
 * microseconds each in C, against ~50 µs per round trip through Node's thread pool, and a
 * project has thousands of small files. Stamped by the open file's own stat, so what the cache
 * records describes what was read. The data may be kept for the send.
 */
function hashSmall(root: string, f: IncludedFile, cache: HashCache | undefined, kept?: ReadCache): ManifestEntry | undefined {
  const fd = openSync(join(root, f.readFrom ?? f.path), OPEN_FLAGS);
  try {
    const st = fstatSync(fd, { bigint: true });
    mustBeFile(f, st);
    // Grown past the small size since the scan: streamed instead.
    if (st.size > SMALL_FILE) return undefined;
    const data = readFileSync(fd);
    const entry = entryFor(f, st, createHash('sha256').update(data).digest('hex'), cache, kept);
    kept?.keep(f.path, data);
    return entry;
  } finally {
    closeSync(fd);
  }
}

/** Hashes a large file as a stream through one open handle, stamped by that handle's stat. */
async function hashLarge(root: string, f: IncludedFile, cache: HashCache | undefined, kept: ReadCache | undefined): Promise<ManifestEntry> {
  const handle = await open(join(root, f.readFrom ?? f.path), OPEN_FLAGS);
  try {
    const st = await handle.stat({ bigint: true });
    mustBeFile(f, st);
    const hash = createHash('sha256');
    for await (const chunk of handle.createReadStream({ highWaterMark: SMALL_FILE, autoClose: false })) hash.update(chunk as Buffer);
    return entryFor(f, st, hash.digest('hex'), cache, kept);
  } finally {
    await handle.close();
  }
}

/** A large file hashed by the second thread, stamped by its handle's stat there. */
async function hashOnWorker(worker: HashWorker, root: string, f: IncludedFile, cache: HashCache | undefined, kept: ReadCache | undefined): Promise<ManifestEntry> {
  try {
    const { sha256, stamp } = await worker.hash(join(root, f.readFrom ?? f.path));
    return entryFor(f, stamp, sha256, cache, kept);
  } catch (err) {
    if ((err as { notFile?: boolean }).notFile) throw new Error(`${f.path} is no longer a regular file`);
    throw err;
  }
}

/** Large files to hash, in bytes, above which a thread of their own pays for its start (~30 ms). */
const HASH_WORKER_MIN_BYTES = 64 * 1024 * 1024;

/** Small files hashed between two turns of the event loop, so a spinner keeps turning. */
const SMALL_BATCH = 64;

export interface ManifestProgress {
  /** Files whose hash came from the cache, and files read and hashed now. */
  cached: number;
  hashed: number;
  hashedBytes: number;
}

/**
 * Each included file as a manifest entry, with its hash when the cache knows it (an unchanged
 * file is not read), in one plain loop: an unchanged tree of thousands of files costs no promise
 * per file. The others have no `sha256` yet (hashEntries, or sent unhashed).
 */
export function entriesFromCache(files: IncludedFile[], cache?: HashCache, kept?: ReadCache): UploadEntry[] {
  return files.map((f) => {
    const cached = cache?.get(f.path, f.stamp);
    if (cached === undefined) return { path: f.path, size: f.size, mode: f.mode };
    kept?.stamp(f.path, f.stamp);
    return { path: f.path, size: f.size, mode: f.mode, sha256: cached };
  });
}

/**
 * Hashes the entries that have no hash yet (only those whose path is in `only`, when given),
 * in place. The size in an entry is what the file has now, so a file that changed since the
 * scan is described as it is.
 */
export async function hashEntries(
  root: string,
  files: IncludedFile[],
  entries: UploadEntry[],
  cache?: HashCache,
  onFile?: (p: ManifestProgress) => void,
  kept?: ReadCache,
  only?: Set<string>,
): Promise<void> {
  const progress: ManifestProgress = { cached: 0, hashed: 0, hashedBytes: 0 };
  const toHash: number[] = [];
  entries.forEach((e, i) => {
    if (e.sha256 === undefined && (!only || only.has(e.path))) toHash.push(i);
    else if (e.sha256 !== undefined) progress.cached += 1;
  });
  if (progress.cached > 0) onFile?.(progress);
  const largeBytes = toHash.reduce((n, i) => n + (files[i]!.size > SMALL_FILE ? files[i]!.size : 0), 0);
  // Enough large files to hash: a second thread takes them, handed out first, while this one
  // hashes the small ones.
  const worker = largeBytes >= HASH_WORKER_MIN_BYTES ? new (await import('./hash-worker.js')).HashWorker() : undefined;
  if (worker) toHash.sort((a, b) => Number(files[b]!.size > SMALL_FILE) - Number(files[a]!.size > SMALL_FILE));
  let smallInTurn = 0;
  try {
    await pMap(
      toHash,
      async (i): Promise<void> => {
        const f = files[i]!;
        let entry: ManifestEntry | undefined;
        if (f.size <= SMALL_FILE) {
          if (++smallInTurn >= SMALL_BATCH) {
            smallInTurn = 0;
            await setImmediate();
          }
          entry = hashSmall(root, f, cache, kept);
        }
        entry ??= await (worker ? hashOnWorker(worker, root, f, cache, kept) : hashLarge(root, f, cache, kept));
        entries[i] = entry;
        progress.hashed += 1;
        progress.hashedBytes += entry.size;
        onFile?.(progress);
      },
      { concurrency: HASH_CONCURRENCY },
    );
  } finally {
    await worker?.close();
  }
}
