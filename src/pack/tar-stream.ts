import { PassThrough, type Readable } from 'node:stream';
import { create, type WriteEntry } from 'tar';
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

/**
 * The files as one gzipped tar stream, read as it is sent (never buffered whole). `onFileSent`
 * fires when a file's last byte has gone into the stream; back-pressure keeps that within a
 * buffer's length of what the server has received.
 */
export function packStream(root: string, files: ManifestEntry[], onFileSent: (e: FileSent) => void): Readable {
  const sizes = new Map(files.map((f) => [f.path, f.size]));
  const bytesTotal = files.reduce((s, f) => s + f.size, 0);
  let index = 0;
  let bytesDone = 0;
  const stream = create(
    {
      cwd: root,
      gzip: true,
      portable: true,
      noDirRecurse: true,
      onWriteEntry: (entry: WriteEntry) => {
        entry.on('end', () => {
          const size = sizes.get(entry.path) ?? 0;
          index += 1;
          bytesDone += size;
          onFileSent({ path: entry.path, size, index, count: files.length, bytesDone, bytesTotal });
        });
      },
    },
    files.map((f) => f.path),
  );
  // A Node stream for the HTTP client; pipe() keeps back-pressure from the socket to the disk reads.
  return stream.pipe(new PassThrough());
}
