import type { Stats } from 'node:fs';
import { chmod, mkdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { formatSize } from '../../protocol/sizes.js';
import { copyOpen, entriesOf, openFileAt, openFolder, openFolderAt, UntrustedFileError } from './session-files.js';

/**
 * Whole folders a session wrote (its checkpoints), walked through the untrusted reader
 * (session-files.ts): each folder entered by descriptor, no link followed, every walk capped.
 */

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

const DEFAULT_MAX_DEPTH = 64;

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
  visit: (entry: Entry, parent: FileHandle, name: string) => Promise<void | 'skip'> | void | 'skip',
): Promise<number> {
  const label = rel || '.';
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
  let count = 0;
  const descend = async (dir: FileHandle, prefix: string, depth: number): Promise<void> => {
    for await (const { name, stat } of entriesOf(dir)) {
      if (++count > limits.maxEntries) {
        throw new UntrustedFileError(label, 'too-many-files', `'${label}' holds more than ${limits.maxEntries.toLocaleString('en')} files and folders`);
      }
      const path = prefix ? `${prefix}/${name}` : name;
      const kind = kindOf(stat);
      // A folder the visitor skips is not entered.
      if ((await visit({ path, kind, stat }, dir, name)) === 'skip' || kind !== 'directory') continue;
      if (depth >= maxDepth) throw new UntrustedFileError(path, 'too-many-files', `'${path}' is more than ${maxDepth} folders deep`);
      const sub = await openFolderAt(dir, name, path);
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
    for await (const { name, stat } of entriesOf(dir)) {
      if (entries.length >= maxEntries) break;
      entries.push({ path: name, kind: kindOf(stat), stat });
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
    const { handle: source } = await openFileAt(parent, name, e.path);
    try {
      const copied = await copyOpen(source, join(dest, e.path), limits.maxBytes - bytes);
      if (copied === null) throw tooLarge();
      bytes += copied;
    } finally {
      await source.close();
    }
  });
  return { bytes, files };
}

/**
 * A backup's copy of the folder `rel` of `root` into `dest`: folders and regular files, through
 * the same reader (nothing followed, nothing but regular files opened, so a FIFO cannot hang
 * it); links and anything else are left out and named, as are the folders `leave` names.
 */
export async function mirror(root: string, rel: string, dest: string, leave: (path: string) => boolean, limits: WalkLimits): Promise<{ bytes: number; files: number; leftOut: string[] }> {
  let bytes = 0;
  let files = 0;
  const leftOut: string[] = [];
  await mkdir(dest, { recursive: true, mode: 0o755 });
  await walk(root, rel, limits, async (e, parent, name) => {
    if (leave(e.path)) return 'skip';
    if (e.kind === 'directory') {
      await mkdir(join(dest, e.path), { mode: 0o755 });
      return;
    }
    if (e.kind !== 'file') {
      leftOut.push(e.path);
      return;
    }
    let source: FileHandle | undefined;
    try {
      source = (await openFileAt(parent, name, e.path)).handle;
      bytes += (await copyOpen(source, join(dest, e.path), Number.MAX_SAFE_INTEGER)) ?? 0;
      files++;
    } catch (err) {
      // Swapped for something else, or gone, since it was listed: a running session's file.
      if (!(err instanceof UntrustedFileError) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      leftOut.push(e.path);
    } finally {
      await source?.close();
    }
  });
  return { bytes, files, leftOut };
}
