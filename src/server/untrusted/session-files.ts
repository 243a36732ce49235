import { constants, type Stats } from 'node:fs';
import { lstat, open, opendir, type FileHandle } from 'node:fs/promises';
import { formatSize } from '../../protocol/sizes.js';

/**
 * The one way the server reads what a session could have written (work folders, checkpoints,
 * events, predictions). The server runs as root and the session's code chose every name under
 * those folders: any of them may be a link to a hidden label file, a FIFO that blocks, a sparse
 * 20 GiB file, or be swapped for one between two calls. So, here and nowhere else:
 *
 * - a path is walked one component at a time from a folder the server made, each component
 *   opened relative to the previous one's descriptor with O_NOFOLLOW (`/proc/self/fd/N/NAME` is
 *   openat(N, NAME) for a process that cannot call openat itself): a link anywhere is refused,
 *   and a swap after a component is opened changes nothing;
 * - what is read must be a regular file by fstat of the descriptor actually read (O_NONBLOCK,
 *   so a FIFO cannot hang the open);
 * - every read and every walk has a byte or entry cap, counted as it goes, never trusted from a
 *   size read earlier.
 */

/** Something a session wrote that the server will not read: names the path and the reason. */
export class UntrustedFileError extends Error {
  constructor(
    /** The path as the session knows it, relative to the folder it was looked up in. */
    readonly path: string,
    readonly why: 'missing' | 'link' | 'not-regular' | 'not-directory' | 'too-large' | 'too-many-files',
    message: string,
  ) {
    super(message);
    this.name = 'UntrustedFileError';
  }
}

const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const O_FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/** The path of an open descriptor, resolved by the kernel to what the descriptor holds. */
function fdPath(handle: FileHandle): string {
  return `/proc/self/fd/${handle.fd}`;
}

/** A name below an open folder, resolved by the kernel as openat would: no link followed in NAME. */
function below(dir: FileHandle, name: string): string {
  return `${fdPath(dir)}/${name}`;
}

/** The components of a relative path; `.`, `..` and empty ones are a caller's bug. */
function components(rel: string): string[] {
  if (rel === '') return [];
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`not a plain relative path: '${rel}'`);
  return parts;
}

function refusal(rel: string, err: NodeJS.ErrnoException, expect: 'file' | 'directory'): Error {
  switch (err.code) {
    case 'ENOENT':
      return new UntrustedFileError(rel, 'missing', `'${rel}' does not exist`);
    case 'ELOOP':
      return new UntrustedFileError(rel, 'link', `'${rel}' is a symbolic link: the server follows none`);
    case 'ENOTDIR':
      return new UntrustedFileError(rel, expect === 'directory' ? 'not-directory' : 'not-regular', `'${rel}' is not a ${expect}`);
    case 'ENXIO':
      // A socket, or a device with no driver: neither is a regular file.
      return new UntrustedFileError(rel, 'not-regular', `'${rel}' is not a regular file`);
    default:
      return err;
  }
}

/**
 * Opens a folder without following a link. O_DIRECTORY with O_NOFOLLOW answers ENOTDIR for a
 * link as for a file: the entry itself (lstat, no link followed) tells which it was.
 */
async function openDir(path: string, rel: string): Promise<FileHandle> {
  try {
    return await open(path, O_DIR);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOTDIR' && (await lstat(path).catch(() => undefined))?.isSymbolicLink()) throw refusal(rel, { ...e, code: 'ELOOP' }, 'directory');
    throw refusal(rel, e, 'directory');
  }
}

/**
 * Opens the folder `root` (made by the server; a link there is refused too) and the folders of
 * `rel` below it, no link followed. The caller closes the handle.
 */
export async function openFolder(root: string, rel = ''): Promise<FileHandle> {
  let dir = await openDir(root, '.');
  let walked = '';
  try {
    for (const name of components(rel)) {
      walked = walked ? `${walked}/${name}` : name;
      const next = await openFolderAt(dir, name, walked);
      await dir.close();
      dir = next;
    }
    return dir;
  } catch (err) {
    await dir.close();
    throw err;
  }
}

/**
 * Opens the entry `name` of the open folder `dir` as a regular file, without following a link
 * (`rel` names it in refusals); the caller closes it.
 */
export async function openFileAt(dir: FileHandle, name: string, rel: string): Promise<{ handle: FileHandle; stat: Stats }> {
  const handle = await open(below(dir, name), O_FILE).catch((err: NodeJS.ErrnoException) => {
    throw refusal(rel, err, 'file');
  });
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw new UntrustedFileError(rel, 'not-regular', `'${rel}' is not a regular file`);
  }
  return { handle, stat };
}

/** Opens the entry `name` of the open folder `dir` as a folder, without following a link. */
export function openFolderAt(dir: FileHandle, name: string, rel: string): Promise<FileHandle> {
  return openDir(below(dir, name), rel);
}

/**
 * The entries of the open folder `dir`, a batch at a time (a huge folder costs no memory), each
 * with its lstat (a link is reported as one); an entry removed meanwhile is skipped.
 */
export async function* entriesOf(dir: FileHandle): AsyncGenerator<{ name: string; stat: Stats }> {
  for await (const dirent of await opendir(fdPath(dir))) {
    const stat = await lstat(below(dir, dirent.name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (stat) yield { name: dirent.name, stat };
  }
}

/** Opens the regular file `rel` under `root`, no link followed anywhere; the caller closes it. */
export async function openFile(root: string, rel: string): Promise<{ handle: FileHandle; stat: Stats }> {
  const parts = components(rel);
  const name = parts.pop();
  if (!name) throw new Error('openFile needs a file name');
  const dir = await openFolder(root, parts.join('/')).catch((err: unknown) => {
    // The folder part is named by the whole path, as the session wrote it.
    if (err instanceof UntrustedFileError && err.path !== '.') throw new UntrustedFileError(rel, err.why, `${err.message} (in '${rel}')`);
    throw err;
  });
  try {
    return await openFileAt(dir, name, rel);
  } finally {
    await dir.close();
  }
}

/** What is read into memory at once. */
export const READ_CHUNK = 1024 * 1024;

/**
 * Reads from an open untrusted file `length` bytes at most from `position`, in chunks, stopping
 * at its real end whatever its size said. Calls `onChunk` with each chunk (a view that the next
 * read overwrites).
 */
export async function readChunks(
  handle: FileHandle,
  position: number,
  length: number,
  onChunk: (chunk: Buffer, at: number) => void | 'stop' | Promise<void | 'stop'>,
): Promise<number> {
  const buffer = Buffer.alloc(Math.min(READ_CHUNK, Math.max(length, 1)));
  let read = 0;
  while (read < length) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - read), position + read);
    if (bytesRead === 0) break;
    const stop = await onChunk(buffer.subarray(0, bytesRead), position + read);
    read += bytesRead;
    if (stop === 'stop') break;
  }
  return read;
}

/**
 * Copies an open untrusted file into a new file `target` of the server's (0644), reading at most
 * `budget` bytes: returns the bytes copied, or null when the file holds more than `budget`.
 */
export async function copyOpen(source: FileHandle, target: string, budget: number): Promise<number | null> {
  const out = await open(target, 'wx', 0o644);
  try {
    let copied = 0;
    // What is read is what counts: the file may have grown since its size was read.
    await readChunks(source, 0, budget + 1, async (chunk, at) => {
      copied += chunk.length;
      if (copied > budget) return 'stop';
      await out.write(chunk, 0, chunk.length, at);
      return undefined;
    });
    await out.chmod(0o644);
    return copied > budget ? null : copied;
  } finally {
    await out.close();
  }
}

/**
 * Copies the regular file `rel` of `root` (no link followed) into `dest`, a new file of the
 * server's, if it holds at most `maxBytes`: what the server then reads (a submit's predictions)
 * can no longer be swapped.
 */
export async function copyOut(root: string, rel: string, dest: string, maxBytes: number): Promise<number> {
  const { handle, stat } = await openFile(root, rel);
  try {
    const copied = stat.size > maxBytes ? null : await copyOpen(handle, dest, maxBytes);
    if (copied === null) throw new UntrustedFileError(rel, 'too-large', `'${rel}' is over ${formatSize(maxBytes)}`);
    return copied;
  } finally {
    await handle.close();
  }
}
