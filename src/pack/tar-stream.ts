import { createHash } from 'node:crypto';
import { type BigIntStats, closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, deflateRawSync, constants as zlib } from 'node:zlib';
import { Header, Pax } from 'tar';
import { USTAR_MAX_SIZE } from '../protocol/paths.js';
import type { UploadEntry } from '../protocol/types.js';
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
const CHUNK_BYTES = 256 * 1024;
const SAMPLE_BYTES = 64 * 1024;
/** A sample that deflates to more than this share of its size is stored, not compressed. */
const INCOMPRESSIBLE_RATIO = 0.9;

function headerBlocks(f: UploadEntry): Buffer[] {
  const fields = { path: f.path, mode: f.mode, size: f.size, type: 'File' as const, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };
  const header = new Header(fields);
  const block = Buffer.alloc(BLOCK);
  // A path too long for ustar goes in a PAX header before it; a size only where ustar's cannot hold it.
  const pax = { ...fields, size: f.size > USTAR_MAX_SIZE ? f.size : undefined };
  return header.encode(block, 0) ? [new Pax(pax).encode(), block] : [block];
}

/** node-tar's header of a file, with its name, mode, size and checksum left to fill in (ustarInto). */
let template: Buffer | undefined;
const PLAIN_NAME = /^[\x21-\x7e][\x20-\x7e]{0,98}$/;

/**
 * Writes `f`'s ustar header into `into` (512 bytes) as node-tar writes it, from a header node-tar
 * made once: its name, mode, size and checksum are the only fields that differ from file to
 * file. Node-tar's encoder cost ~16 µs a file (80 ms for 5,000); this, ~1 µs. False for a
 * path that is not short and plain ASCII (node-tar then writes it, with a PAX header).
 */
export function ustarInto(f: UploadEntry, into: Buffer): boolean {
  if (!PLAIN_NAME.test(f.path) || f.size > USTAR_MAX_SIZE) return false;
  template ??= headerBlocks({ path: 'x', mode: 0, size: 0 })[0]!;
  template.copy(into, 0, 0, BLOCK);
  into.fill(0, 0, 100);
  into.write(f.path, 0, 'latin1');
  into.write(octal(f.mode & 0o7777, 8), 100, 'latin1');
  into.write(octal(f.size, 12), 124, 'latin1');
  into.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += into[i]!;
  into.write(octal(sum, 8), 148, 'latin1');
  return true;
}

/** A number for a ustar field of `width` bytes, as node-tar writes it: digits, a space and NUL, or as many digits as fit and NUL. */
function octal(n: number, width: number): string {
  const digits = n.toString(8);
  return digits.length === width - 1 ? `${digits}\0` : `${digits.padStart(width - 2, '0')} \0`;
}

/** What a file sent without a hash turned out to be: its sha256, and its stamp when it did not change while read. */
export interface FileHashed {
  path: string;
  sha256: string;
  /** The stat of the handle it was read through, taken before the read and unchanged after it. */
  stamp: FileStamp;
}

/** Non-blocking, so a file replaced by a FIFO since the scan cannot hang the open. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/**
 * The tar's bytes, gathered into chunks of at least CHUNK_BYTES: every chunk is a trip through
 * gzip and the socket, and 15,000 tiny ones cost more than the data. Headers, padding and small
 * files are written (read, for files) straight into the chunk: no buffer per file.
 */
class Chunks {
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private at = 0;

  /** Makes room for `n` more bytes; returns the full chunk to send first, if that took a new one. */
  room(n: number): Buffer | undefined {
    if (this.at + n <= this.buf.length) return undefined;
    return this.take(n);
  }

  /** The chunk so far (if any), to send now; the next one has room for `n` bytes. */
  take(n = 0): Buffer | undefined {
    const full = this.at > 0 ? this.buf.subarray(0, this.at) : undefined;
    if (full || n > this.buf.length) this.buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, n));
    this.at = 0;
    return full;
  }

  put(data: Buffer): void {
    data.copy(this.buf, this.at);
    this.at += data.length;
  }

  zeros(n: number): void {
    this.buf.fill(0, this.at, this.at + n);
    this.at += n;
  }

  /** The next `n` bytes of the chunk, to read into; `advance` keeps what was read. */
  space(n: number): Buffer {
    return this.buf.subarray(this.at, this.at + n);
  }

  advance(n: number): void {
    this.at += n;
  }
}

/**
 * The files as one tar, read as it is sent. Each file is read once and counted on the way, and
 * checked against what it looked like when hashed (or hashed again): one that grew, shrank,
 * vanished or changed since the manifest was made stops the stream with a FileChangedError
 * naming it, rather than sending what the manifest does not say. A file sent without a hash is
 * hashed as it is read and reported to `onHashed` (the server hashes it too; the CLI compares).
 * `onFileSent` fires when a file's last byte has been handed to the stream.
 */
export async function* tarChunks(
  root: string,
  files: UploadEntry[],
  onFileSent: (e: FileSent) => void,
  kept?: ReadCache,
  onRead?: (e: FileProgress) => void,
  onHashed?: (e: FileHashed) => void,
): AsyncGenerator<Buffer> {
  const bytesTotal = files.reduce((s, f) => s + f.size, 0);
  const out = new Chunks();
  let bytesDone = 0;
  let full: Buffer | undefined;
  for (const [i, f] of files.entries()) {
    const inMemory = f.sha256 === undefined ? undefined : kept?.take(f.path);
    if ((full = out.room(BLOCK))) yield full;
    if (ustarInto(f, out.space(BLOCK))) out.advance(BLOCK);
    else {
      for (const block of headerBlocks(f)) {
        if ((full = out.room(block.length))) yield full;
        out.put(block);
      }
    }
    // Kept data is exactly what the manifest's hash was made from. What is read now is checked
    // against the stamp its hash was made at (the stat of the handle it is read through, after
    // the read: any write since moves its ctime), or hashed again when no stamp is known; a
    // file without a hash is hashed, and must not change between its open and the read's end.
    const stamp = inMemory || f.sha256 === undefined ? undefined : kept?.stampOf(f.path);
    const hash = inMemory || stamp ? undefined : createHash('sha256');
    let read = 0;
    const progress = () => onRead?.({ path: f.path, size: f.size, index: i + 1, count: files.length, read, bytesDone: bytesDone + read, bytesTotal });
    progress();
    let handle: FileHandle | undefined;
    let before: BigIntStats | undefined;
    let after: BigIntStats | undefined;
    try {
      if (inMemory) {
        if ((full = out.room(inMemory.length))) yield full;
        out.put(inMemory);
        read = inMemory.length;
      } else if (f.size <= SMALL_FILE) {
        // Read into the chunk with synchronous calls: a few microseconds each in C, against a
        // thread-pool round trip each, and a first upload reads thousands of small files. One
        // byte more than the entry says is asked for, to see a file that grew.
        if ((full = out.room(f.size + 1))) yield full;
        const into = out.space(f.size + 1);
        ({ read, before, after } = readSmall(join(root, f.path), f, into));
        if (read > f.size) throw new FileChangedError(f.path, 'grew');
        hash?.update(into.subarray(0, read));
        out.advance(read);
      } else {
        if ((full = out.take())) yield full;
        handle = await open(join(root, f.path), OPEN_FLAGS);
        before = await handle.stat({ bigint: true });
        if (!before.isFile()) throw new FileChangedError(f.path, 'is no longer a regular file');
        for await (const buf of handle.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false }) as AsyncIterable<Buffer>) {
          read += buf.length;
          if (read > f.size) throw new FileChangedError(f.path, 'grew');
          hash?.update(buf);
          yield buf;
          // After the chunk was taken: read as far as the socket has drained, give or take a buffer.
          progress();
        }
        after = await handle.stat({ bigint: true });
      }
    } catch (err) {
      if (err instanceof FileChangedError) throw err;
      throw new FileChangedError(f.path, `could not be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    } finally {
      await handle?.close();
    }
    if (read < f.size) throw new FileChangedError(f.path, 'shrank or vanished');
    if (f.sha256 === undefined) {
      if (!before || !after || !sameStamp(stampOf(before), after)) throw new FileChangedError(f.path, 'changed');
      onHashed?.({ path: f.path, sha256: hash!.digest('hex'), stamp: stampOf(before) });
    } else {
      if (hash && hash.digest('hex') !== f.sha256) throw new FileChangedError(f.path, 'changed');
      if (stamp && after && !sameStamp(stamp, after)) throw new FileChangedError(f.path, 'changed');
    }
    const pad = (BLOCK - (f.size % BLOCK)) % BLOCK;
    if ((full = out.room(pad))) yield full;
    out.zeros(pad);
    bytesDone += f.size;
    onFileSent({ path: f.path, size: f.size, index: i + 1, count: files.length, bytesDone, bytesTotal });
  }
  if ((full = out.room(2 * BLOCK))) yield full;
  out.zeros(2 * BLOCK);
  if ((full = out.take())) yield full;
}

/** A small file read into `into` (up to its length), with the stat of its handle before and after the read. */
function readSmall(path: string, f: UploadEntry, into: Buffer): { read: number; before: BigIntStats; after: BigIntStats } {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile()) throw new FileChangedError(f.path, 'is no longer a regular file');
    let read = 0;
    while (read < into.length) {
      const got = readSync(fd, into, read, into.length - read, read);
      if (got === 0) break;
      read += got;
    }
    return { read, before, after: fstatSync(fd, { bigint: true }) };
  } finally {
    closeSync(fd);
  }
}

function stampOf(st: BigIntStats): FileStamp {
  return { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev };
}

function sameStamp(a: FileStamp, st: BigIntStats): boolean {
  return a.size === st.size && a.mtimeNs === st.mtimeNs && a.ctimeNs === st.ctimeNs && a.ino === st.ino && a.dev === st.dev;
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
export async function incompressibleShare(root: string, files: UploadEntry[]): Promise<number> {
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
  files: UploadEntry[],
  onFileSent: (e: FileSent) => void,
  kept?: ReadCache,
  onRead?: (e: FileProgress) => void,
  onHashed?: (e: FileHashed) => void,
): Promise<PackedStream> {
  const gzip = (await incompressibleShare(root, files)) < STORE_SHARE;
  const tar = Readable.from(tarChunks(root, files, onFileSent, kept, onRead, onHashed), { objectMode: false });
  if (!gzip) return { stream: tar, contentType: 'application/x-tar' };
  const zipped = createGzip({ level: GZIP_LEVEL });
  tar.on('error', (err) => zipped.destroy(err));
  return { stream: tar.pipe(zipped), contentType: 'application/gzip' };
}
