import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, deflateRawSync, constants as zlib } from 'node:zlib';
import { Header, Pax } from 'tar';
import { USTAR_MAX_SIZE } from '../protocol/paths.js';
import type { ManifestEntry } from '../protocol/types.js';
import type { FileStamp } from './hash-cache.js';
import type { ReadCache } from './manifest.js';

export interface FileSent {
  path: string;
  size: number;
  /** 1-based position and totals, for `main.py 365 B - done (2/3 66.67%)`. */
  index: number;
  count: number;
  bytesDone: number;
  bytesTotal: number;
}

/** Where the send stands inside a file: `read` of its `size` bytes read so far (0: it starts). */
export interface FileProgress {
  path: string;
  size: number;
  index: number;
  count: number;
  read: number;
  /** All files' bytes read so far, this one's included. */
  bytesDone: number;
  bytesTotal: number;
}

/** A file that no longer matches its manifest entry: it changed or vanished after hashing. */
export class FileChangedError extends Error {
  constructor(readonly path: string, why: string) {
    super(`${path} ${why} while it was being sent: run again (it is hashed anew)`);
    this.name = 'FileChangedError';
  }
}

const BLOCK = 512;
// Speed over ratio: the link is rarely slower than gzip's default level on two cores.
const GZIP_LEVEL = zlib.Z_BEST_SPEED;
const READ_CHUNK = 1024 * 1024;
const SMALL_FILE = 1024 * 1024;
const PREFETCH_FILES = 32;
const COALESCE_BYTES = 256 * 1024;
const SAMPLE_BYTES = 64 * 1024;
/** A sample that deflates to more than this share of its size is stored, not compressed. */
const INCOMPRESSIBLE_RATIO = 0.9;

function headerBlocks(f: ManifestEntry): Buffer[] {
  const fields = { path: f.path, mode: f.mode, size: f.size, type: 'File' as const, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };
  const header = new Header(fields);
  const block = Buffer.alloc(BLOCK);
  // A path too long for ustar goes in a PAX header before it; a size only where ustar's cannot hold it.
  const pax = { ...fields, size: f.size > USTAR_MAX_SIZE ? f.size : undefined };
  return header.encode(block, 0) ? [new Pax(pax).encode(), block] : [block];
}

/**
 * The files as one tar, read as it is sent. Each file is read once and counted on the way, and
 * checked against what it looked like when hashed (or hashed again): one that grew, shrank,
 * vanished or changed since the manifest was made stops the stream with a FileChangedError naming it, rather than sending what the manifest does not
 * say. `onFileSent` fires when a file's last byte has been handed to the stream.
 */
export async function* tarChunks(
  root: string,
  files: ManifestEntry[],
  onFileSent: (e: FileSent) => void,
  kept?: ReadCache,
  onRead?: (e: FileProgress) => void,
): AsyncGenerator<Buffer> {
  const bytesTotal = files.reduce((s, f) => s + f.size, 0);
  let bytesDone = 0;
  // Small files are read ahead, several at a time, while earlier ones are being sent.
  const ahead = new Map<number, Promise<Read | Error>>();
  const readAhead = (from: number) => {
    for (let j = from; j < files.length && ahead.size < PREFETCH_FILES; j++) {
      const f = files[j]!;
      if (f.size <= SMALL_FILE && !ahead.has(j) && !kept?.has(f.path)) ahead.set(j, readWhole(join(root, f.path)).catch((err: Error) => err));
    }
  };
  for (const [i, f] of files.entries()) {
    const inMemory = kept?.take(f.path);
    if (!inMemory) readAhead(i);
    yield* headerBlocks(f);
    // Kept data is exactly what the manifest's hash was made from. What is read now is checked
    // against the stamp its hash was made at (the stat of the handle it is read through, after
    // the read: any write since moves its ctime), or hashed again when no stamp is known.
    const stamp = inMemory ? undefined : kept?.stampOf(f.path);
    const hash = inMemory || stamp ? undefined : createHash('sha256');
    let read = 0;
    const progress = () => onRead?.({ path: f.path, size: f.size, index: i + 1, count: files.length, read, bytesDone: bytesDone + read, bytesTotal });
    progress();
    let handle: FileHandle | undefined;
    let after: BigIntStats | undefined;
    try {
      let chunks: AsyncIterable<Buffer> | Buffer[];
      if (inMemory) chunks = [inMemory];
      else if (ahead.has(i)) {
        const whole = await ahead.get(i)!;
        if (whole instanceof Error) throw whole;
        chunks = [whole.data];
        after = whole.st;
      } else {
        handle = await open(join(root, f.path), 'r');
        chunks = handle.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false });
      }
      ahead.delete(i);
      for await (const buf of chunks) {
        read += buf.length;
        if (read > f.size) throw new FileChangedError(f.path, 'grew');
        hash?.update(buf);
        yield buf;
        // After the chunk was taken: read as far as the socket has drained, give or take a buffer.
        if (f.size > SMALL_FILE) progress();
      }
      if (handle) after = await handle.stat({ bigint: true });
    } catch (err) {
      if (err instanceof FileChangedError) throw err;
      throw new FileChangedError(f.path, `could not be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    } finally {
      await handle?.close();
    }
    if (read < f.size) throw new FileChangedError(f.path, 'shrank or vanished');
    if (hash && hash.digest('hex') !== f.sha256) throw new FileChangedError(f.path, 'changed');
    if (stamp && after && !sameStamp(stamp, after)) throw new FileChangedError(f.path, 'changed');
    if (f.size % BLOCK) yield Buffer.alloc(BLOCK - (f.size % BLOCK));
    bytesDone += f.size;
    onFileSent({ path: f.path, size: f.size, index: i + 1, count: files.length, bytesDone, bytesTotal });
  }
  yield Buffer.alloc(2 * BLOCK);
}

interface Read {
  data: Buffer;
  st: BigIntStats;
}

/** A small file read whole, with the stat of the handle it was read through, taken after the read. */
async function readWhole(path: string): Promise<Read> {
  const handle = await open(path, 'r');
  try {
    const data = await handle.readFile();
    return { data, st: await handle.stat({ bigint: true }) };
  } finally {
    await handle.close();
  }
}

function sameStamp(a: FileStamp, st: BigIntStats): boolean {
  return a.size === st.size && a.mtimeNs === st.mtimeNs && a.ctimeNs === st.ctimeNs && a.ino === st.ino && a.dev === st.dev;
}

/**
 * Joins small pieces (headers, padding, small files) into chunks of at least COALESCE_BYTES:
 * every chunk is a trip through gzip and the socket, and 15,000 tiny ones cost more than the
 * data.
 */
export async function* coalesce(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    pending.push(chunk);
    size += chunk.length;
    if (size >= COALESCE_BYTES) {
      yield pending.length === 1 ? pending[0]! : Buffer.concat(pending, size);
      pending = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(pending, size);
}

/** Whether a sample of a file shrinks under deflate: random weights and archives do not. */
function compressible(sample: Buffer): boolean {
  if (sample.length < 4096) return true;
  return deflateRawSync(sample, { level: 1 }).length < sample.length * INCOMPRESSIBLE_RATIO;
}

/** The share of the bytes to send that must be incompressible for the tar to go uncompressed. */
const STORE_SHARE = 0.5;

/**
 * Samples the files: the share of their bytes that deflate would not shrink. (Node 20's zlib
 * cannot switch a gzip stream to stored blocks mid-way, so the choice is made per upload.)
 */
export async function incompressibleShare(root: string, files: ManifestEntry[]): Promise<number> {
  const total = files.reduce((s, f) => s + f.size, 0);
  if (total === 0) return 0;
  let stored = 0;
  for (const f of [...files].sort((a, b) => b.size - a.size).slice(0, 64)) {
    if (f.size < SAMPLE_BYTES) break;
    const handle = await open(join(root, f.path), 'r').catch(() => undefined);
    if (!handle) continue;
    const sample = Buffer.alloc(SAMPLE_BYTES);
    const { bytesRead } = await handle.read(sample, 0, SAMPLE_BYTES, 0).finally(() => handle.close());
    if (!compressible(sample.subarray(0, bytesRead))) stored += f.size;
  }
  return stored / total;
}

export interface PackedStream {
  stream: Readable;
  contentType: 'application/gzip' | 'application/x-tar';
}

/**
 * The tar as a Node stream, with back-pressure from the socket to the disk reads: gzipped at
 * the fastest level, or plain when most of it would not shrink (weights, archives), where
 * compressing only costs time.
 */
export async function packStream(
  root: string,
  files: ManifestEntry[],
  onFileSent: (e: FileSent) => void,
  kept?: ReadCache,
  onRead?: (e: FileProgress) => void,
): Promise<PackedStream> {
  const gzip = (await incompressibleShare(root, files)) < STORE_SHARE;
  const tar = Readable.from(coalesce(tarChunks(root, files, onFileSent, kept, onRead)), { objectMode: false });
  if (!gzip) return { stream: tar, contentType: 'application/x-tar' };
  const zipped = createGzip({ level: GZIP_LEVEL });
  tar.on('error', (err) => zipped.destroy(err));
  return { stream: tar.pipe(zipped), contentType: 'application/gzip' };
}
