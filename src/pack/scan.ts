import { lstatSync, readdirSync, realpathSync, statSync, type BigIntStats, type Dirent } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { DEFAULT_NSMLIGNORE, NSMLIGNORE_FILE } from './default-ignores.js';
import type { FileStamp } from './hash-cache.js';

export interface IncludedFile {
  /** Relative, with forward slashes: the path the server lays out. */
  path: string;
  size: number;
  mode: number;
  /** What the file looked like when scanned: the hash cache's key. */
  stamp: FileStamp;
  /** For a symbolic link to a file inside the project: that file, sent under the link's name. */
  readFrom?: string;
}

export interface LeftOut {
  path: string;
  /** Why: the rule that ignored it (`.nsmlignore:3: *.ckpt`, `default: .git/`), or what it is. */
  reason: string;
  directory: boolean;
}

export interface ScanResult {
  root: string;
  included: IncludedFile[];
  leftOut: LeftOut[];
  /** Files that exist but cannot be read: a run must not silently leave them out. */
  unreadable: string[];
  totalBytes: number;
}

export interface ScanOptions {
  /** Apply the built-in rules and `.nsmlignore` (a session's project); false for a dataset folder. */
  useIgnoreRules: boolean;
}

/** Builds the ignore matcher; each rule carries a mark saying where it came from. */
export async function loadIgnoreRules(root: string): Promise<Ignore> {
  const ig = ignore();
  ig.add(DEFAULT_NSMLIGNORE.filter((l) => l && !l.startsWith('#')).map((pattern) => ({ pattern, mark: 'default' })));
  let text: string | undefined;
  try {
    text = await readFile(join(root, NSMLIGNORE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  text?.split(/\r?\n/).forEach((pattern, i) => {
    if (pattern.trim() && !pattern.startsWith('#')) ig.add({ pattern, mark: `${NSMLIGNORE_FILE}:${i + 1}` });
  });
  return ig;
}

/**
 * Walks the project once: what will be sent, what is left out and why, what cannot be read.
 * With synchronous calls: a cached `lstat` is a few microseconds in C, against ~50 µs for a
 * round trip through Node's thread pool, and the CLI has nothing else to do meanwhile.
 */
export async function scanProject(root: string, options: ScanOptions): Promise<ScanResult> {
  const ig = options.useIgnoreRules ? await loadIgnoreRules(root) : undefined;
  const result: ScanResult = { root, included: [], leftOut: [], unreadable: [], totalBytes: 0 };
  walk(root, '', ig, result);
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  result.included.sort(byPath);
  result.leftOut.sort(byPath);
  result.unreadable.sort();
  return result;
}

function walk(root: string, rel: string, ig: Ignore | undefined, out: ScanResult): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(join(root, rel), { withFileTypes: true });
  } catch {
    out.unreadable.push(rel ? `${rel}/` : '.');
    return;
  }
  for (const entry of entries) visit(root, rel, entry, ig, out);
}

function visit(root: string, rel: string, entry: Dirent, ig: Ignore | undefined, out: ScanResult): void {
  const path = rel ? `${rel}/${entry.name}` : entry.name;
  const directory = entry.isDirectory();
  const test = ig?.test(directory ? `${path}/` : path);
  if (test?.ignored) {
    const rule = test.rule!;
    out.leftOut.push({ path, directory, reason: `${rule.mark}: ${rule.pattern}` });
  } else if (directory) {
    walk(root, path, ig, out);
  } else if (entry.isFile()) {
    addFile(root, path, out);
  } else if (entry.isSymbolicLink()) {
    addLink(root, path, out);
  } else {
    out.leftOut.push({ path, directory: false, reason: 'not a regular file (FIFO, socket or device)' });
  }
}

/**
 * A link to a file inside the project is sent as a copy of that file under the link's name;
 * a link to a folder, out of the project, or to nothing is left out, saying which.
 */
function addLink(root: string, path: string, out: ScanResult): void {
  const leave = (reason: string): void => void out.leftOut.push({ path, directory: false, reason });
  let target: string;
  let realRoot: string;
  try {
    target = realpathSync(join(root, path));
    realRoot = realpathSync(root);
  } catch {
    return leave('broken symbolic link');
  }
  const inside = relative(realRoot, target);
  if (inside.startsWith('..') || isAbsolute(inside)) return leave('symbolic link pointing outside the project (not followed)');
  if (statSync(target).isDirectory()) return leave('symbolic link to a folder (not followed)');
  addFile(root, path, out, inside.split(sep).join('/'));
}

/**
 * Whether the mode bits let this process read the file: from the one lstat the scan makes
 * anyway (an access() call per file doubles a scan's cost). A file an ACL denies is caught
 * when it is read.
 */
function readable(st: BigIntStats): boolean {
  if (UID === undefined || UID === 0n) return true;
  if (UID === st.uid) return (st.mode & 0o400n) !== 0n;
  if (GROUPS.includes(st.gid)) return (st.mode & 0o040n) !== 0n;
  return (st.mode & 0o004n) !== 0n;
}

// Asked once: each is a system call, and a scan checks thousands of files.
const UID = process.getuid === undefined ? undefined : BigInt(process.getuid());
const GROUPS = (process.getgroups?.() ?? []).map((g) => BigInt(g));

function addFile(root: string, path: string, out: ScanResult, readFrom?: string): void {
  const abs = join(root, readFrom ?? path);
  let st: BigIntStats;
  try {
    st = lstatSync(abs, { bigint: true });
  } catch {
    return void out.unreadable.push(path);
  }
  if (!readable(st)) return void out.unreadable.push(path);
  const stamp = { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev };
  const size = Number(st.size);
  out.included.push({ path, size, mode: st.mode & 0o111n ? 0o755 : 0o644, stamp, ...(readFrom ? { readFrom } : {}) });
  out.totalBytes += size;
}
