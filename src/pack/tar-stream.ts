import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, constants as zlib } from 'node:zlib';
import { Header, Pax } from 'tar';
import type { ManifestEntry } from '../protocol/types.js';

export interface FileSent {
  path: string;
  size: number;
  /** 1-based position and totals, for `main.py 365 B - done (2/3 66.67%)`. */
  index: number;
  count: number;
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

function headerBlocks(f: ManifestEntry): Buffer[] {
  const fields = { path: f.path, mode: f.mode, size: f.size, type: 'File' as const, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };
  const header = new Header(fields);
  const block = Buffer.alloc(BLOCK);
  // A path too long for ustar goes in a PAX header before it.
  return header.encode(block, 0) ? [new Pax(fields).encode(), block] : [block];
}

/**
 * The files as one tar, read as it is sent. Each file is read once, counted and hashed on the
 * way: one that grew, shrank, vanished or changed since the manifest was made stops the
 * stream with a FileChangedError naming it, rather than sending what the manifest does not
 * say. `onFileSent` fires when a file's last byte has been handed to the stream.
 */
export async function* tarChunks(root: string, files: ManifestEntry[], onFileSent: (e: FileSent) => void): AsyncGenerator<Buffer> {
  const bytesTotal = files.reduce((s, f) => s + f.size, 0);
  let bytesDone = 0;
  for (const [i, f] of files.entries()) {
    yield* headerBlocks(f);
    const hash = createHash('sha256');
    let read = 0;
    try {
      for await (const chunk of createReadStream(join(root, f.path), { highWaterMark: READ_CHUNK })) {
        const buf = chunk as Buffer;
        read += buf.length;
        if (read > f.size) throw new FileChangedError(f.path, 'grew');
        hash.update(buf);
        yield buf;
      }
    } catch (err) {
      if (err instanceof FileChangedError) throw err;
      throw new FileChangedError(f.path, `could not be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (read < f.size) throw new FileChangedError(f.path, 'shrank or vanished');
    if (hash.digest('hex') !== f.sha256) throw new FileChangedError(f.path, 'changed');
    if (f.size % BLOCK) yield Buffer.alloc(BLOCK - (f.size % BLOCK));
    bytesDone += f.size;
    onFileSent({ path: f.path, size: f.size, index: i + 1, count: files.length, bytesDone, bytesTotal });
  }
  yield Buffer.alloc(2 * BLOCK);
}

/** The gzipped tar as a Node stream, with back-pressure from the socket to the disk reads. */
export function packStream(root: string, files: ManifestEntry[], onFileSent: (e: FileSent) => void): Readable {
  const tar = Readable.from(tarChunks(root, files, onFileSent), { objectMode: false });
  const gzip = createGzip({ level: GZIP_LEVEL });
  tar.on('error', (err) => gzip.destroy(err));
  return tar.pipe(gzip);
}
