import { constants, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, open, opendir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
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
export function below(dir: FileHandle, name: string): string {
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
      const next = await openDir(below(dir, name), walked);
      await dir.close();
      dir = next;
    }
    return dir;
  } catch (err) {
    await dir.close();
    throw err;
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
    const handle = await open(below(dir, name), O_FILE).catch((err: NodeJS.ErrnoException) => {
      throw refusal(rel, err, 'file');
    });
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      throw new UntrustedFileError(rel, 'not-regular', `'${rel}' is not a regular file`);
    }
    return { handle, stat };
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

/** The whole regular file `rel` under `root`, if it holds at most `maxBytes`. */
export async function readCapped(root: string, rel: string, maxBytes: number): Promise<Buffer> {
  const { handle, stat } = await openFile(root, rel);
  try {
    const tooLarge = () => new UntrustedFileError(rel, 'too-large', `'${rel}' is over ${formatSize(maxBytes)}`);
    if (stat.size > maxBytes) throw tooLarge();
    const chunks: Buffer[] = [];
    // One byte past the cap tells a file that grew since its stat.
    const got = await readChunks(handle, 0, maxBytes + 1, (chunk) => void chunks.push(Buffer.from(chunk)));
    if (got > maxBytes) throw tooLarge();
    return Buffer.concat(chunks);
  } finally {
    await handle.close();
  }
}

export type EntryKind = 'file' | 'directory' | 'link' | 'other';

export interface Entry {
  /** Relative to the folder walked. */
  path: string;
  kind: EntryKind;
  stat: Stats;
}

export interface WalkLimits {
  /** Files, folders, links and others together. */
  maxEntries: number;
  /** Folders below the one walked (each level holds a descriptor while it is walked). */
  maxDepth?: number;
}

export const DEFAULT_MAX_DEPTH = 64;

function kindOf(st: Stats): EntryKind {
  return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'link' : 'other';
}

/**
 * Every entry under the folder `rel` of `root`, parents before children, links reported and
 * never followed, at most `maxEntries` of them and `maxDepth` levels down (else
 * UntrustedFileError 'too-many-files'). Folders are listed a batch at a time and entered by
 * descriptor, so a huge folder costs no memory and a folder swapped for a link while the walk
 * runs is refused, not followed. `visit` gets the entry and the open folder it is in.
 */
export async function walk(
  root: string,
  rel: string,
  limits: WalkLimits,
  visit: (entry: Entry, parent: FileHandle, name: string) => Promise<void> | void,
): Promise<number> {
  const label = rel || '.';
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
  let count = 0;
  const descend = async (dir: FileHandle, prefix: string, depth: number): Promise<void> => {
    for await (const dirent of await opendir(fdPath(dir))) {
      if (++count > limits.maxEntries) {
        throw new UntrustedFileError(label, 'too-many-files', `'${label}' holds more than ${limits.maxEntries.toLocaleString('en')} files and folders`);
      }
      const name = dirent.name;
      const path = prefix ? `${prefix}/${name}` : name;
      const stat = await lstat(below(dir, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined; // Removed meanwhile.
        throw err;
      });
      if (!stat) continue;
      const kind = kindOf(stat);
      await visit({ path, kind, stat }, dir, name);
      if (kind !== 'directory') continue;
      if (depth >= maxDepth) throw new UntrustedFileError(path, 'too-many-files', `'${path}' is more than ${maxDepth} folders deep`);
      const sub = await openDir(below(dir, name), path);
      try {
        await descend(sub, path, depth + 1);
      } finally {
        await sub.close();
      }
    }
  };
  const top = await openFolder(root, rel);
  try {
    await descend(top, '', 1);
  } finally {
    await top.close();
  }
  return count;
}

/**
 * The entries directly in the folder `rel` of `root`, links reported and never followed: the
 * first `maxEntries` the folder lists (a folder with more is listed that far).
 */
export async function listFolder(root: string, rel: string, maxEntries: number): Promise<Entry[]> {
  const dir = await openFolder(root, rel);
  const entries: Entry[] = [];
  try {
    for await (const dirent of await opendir(fdPath(dir))) {
      if (entries.length >= maxEntries) break;
      const stat = await lstat(below(dir, dirent.name)).catch(() => undefined);
      if (stat) entries.push({ path: dirent.name, kind: kindOf(stat), stat });
    }
  } finally {
    await dir.close();
  }
  return entries;
}

/**
 * The apparent size of everything under the folder `rel` of `root` (what a copy would hold: a
 * sparse file counts its full size, a link its own few bytes) and how many entries it holds.
 * Past `maxEntries` it stops, with what it counted so far and `complete` false.
 */
export async function treeSize(root: string, rel: string, limits: WalkLimits): Promise<{ bytes: number; entries: number; complete: boolean }> {
  let bytes = 0;
  let entries = 0;
  try {
    await walk(root, rel, limits, (e) => {
      entries++;
      if (e.kind !== 'directory') bytes += e.stat.size;
    });
    return { bytes, entries, complete: true };
  } catch (err) {
    if (err instanceof UntrustedFileError && err.why === 'too-many-files') return { bytes, entries, complete: false };
    throw err;
  }
}

/**
 * Copies an open untrusted file into a new file `target` of the server's (0644), reading at most
 * `budget` bytes: returns the bytes copied, or null when the file holds more than `budget`.
 */
async function copyOpen(source: FileHandle, target: string, budget: number): Promise<number | null> {
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

export interface SnapshotLimits extends WalkLimits {
  maxBytes: number;
  /** How the refusals name the folder to the participant (`checkpoint 'best'`). */
  what: string;
}

/**
 * Copies the folder `rel` of `root` into `dest` (which must not exist): folders and regular files
 * only, a link or anything else refused by name, at most `maxBytes` in all, counted as read.
 * The copy belongs to the server (folders 0755, files 0644): the session can no longer change
 * it, and nothing of its modes (setuid) survives. With `dest` null it only checks. Returns the
 * bytes and files it found.
 */
export async function snapshot(root: string, rel: string, dest: string | null, limits: SnapshotLimits): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  const tooLarge = () => new UntrustedFileError(rel, 'too-large', `${limits.what} is over ${formatSize(limits.maxBytes)}`);
  const makeDir = async (path: string) => {
    await mkdir(path, { mode: 0o755 });
    await chmod(path, 0o755);
  };
  if (dest) await makeDir(dest);
  await walk(root, rel, limits, async (e, parent, name) => {
    if (e.kind === 'link') throw new UntrustedFileError(e.path, 'link', `${limits.what} holds a symbolic link, '${e.path}': it may hold only files and folders`);
    if (e.kind === 'other') throw new UntrustedFileError(e.path, 'not-regular', `${limits.what} holds '${e.path}', which is neither a file nor a folder`);
    if (e.kind === 'directory') {
      if (dest) await makeDir(join(dest, e.path));
      return;
    }
    if (bytes + e.stat.size > limits.maxBytes) throw tooLarge();
    files++;
    if (!dest) {
      bytes += e.stat.size;
      return;
    }
    const source = await open(below(parent, name), O_FILE).catch((err: NodeJS.ErrnoException) => {
      throw refusal(e.path, err, 'file');
    });
    try {
      if (!(await source.stat()).isFile()) throw new UntrustedFileError(e.path, 'not-regular', `${limits.what} holds '${e.path}', which is not a regular file`);
      const copied = await copyOpen(source, join(dest, e.path), limits.maxBytes - bytes);
      if (copied === null) throw tooLarge();
      bytes += copied;
    } finally {
      await source.close();
    }
  });
  return { bytes, files };
}
