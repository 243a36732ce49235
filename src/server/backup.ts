import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import Database from 'better-sqlite3';
import { VERSION } from '../protocol/version.js';
import { DataDir } from './data-dir.js';
import { mirror } from './untrusted/session-trees.js';

export interface BackupSummary {
  dest: string;
  sessions: number;
  submits: number;
  datasets: number;
  bytes: number;
  /** What sessions wrote that a backup does not copy (links, FIFOs), by path. */
  leftOut: string[];
}

/** What sessions write: copied through the untrusted reader, never with cp. */
const SESSION_WRITTEN = new Set(['sessions', 'checkpoints']);
/** The server's own, copied as they are: contents by hash, datasets, logs and their indexes. */
const SERVER_WRITTEN = new Set(['blobs', 'datasets', 'logs']);
/** Walks of what sessions wrote: every session's files are capped far below this. */
const BACKUP_WALK = { maxEntries: 50_000_000, maxDepth: 256 };

/**
 * A consistent copy of a data dir while its server runs. The database goes through SQLite's
 * online backup: one snapshot, while the server keeps writing. The files only grow or are
 * written once (contents by hash, logs appended, checkpoints), so everything the snapshot
 * names is there. What sessions wrote is copied through the untrusted reader: folders and
 * regular files, no link followed or copied, no FIFO opened. Left out: the database's live
 * files, running sessions' work folders, anything half made, and trees (a server lays them
 * out again from the contents at start).
 *
 * `khd server --data-dir DEST` starts from the copy. Sessions that were running then read as
 * ended by a restart, and submits being evaluated as platform failures that do not count.
 */
export async function backupDataDir(source: string, dest: string): Promise<BackupSummary> {
  const from = new DataDir(resolve(source));
  if (!existsSync(from.database)) throw new Error(`${source} holds no khd data dir (no khd.db): give the server's --data-dir`);
  const to = resolve(dest);
  if (to === from.root || to.startsWith(from.root + sep)) throw new Error('the backup cannot go inside the data dir it copies: choose a folder elsewhere');
  if (existsSync(to) && readdirSync(to).length > 0) throw new Error(`${dest} is not empty: back up into a new folder, so no older backup is mixed in`);
  await mkdir(to, { recursive: true, mode: 0o700 });

  const db = new Database(from.database, { readonly: true, fileMustExist: true });
  let counts: { sessions: number; submits: number; datasets: number };
  try {
    await db.backup(join(to, 'khd.db'));
    const n = (table: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    counts = { sessions: n('sessions'), submits: n('submits'), datasets: n('datasets') };
  } finally {
    db.close();
  }
  let bytes = 0;
  const leftOut: string[] = [];
  for (const name of await readdir(from.root)) {
    if (SERVER_WRITTEN.has(name)) {
      await cp(join(from.root, name), join(to, name), {
        recursive: true,
        preserveTimestamps: true,
        filter: (src) => !halfMade(relative(from.root, src)),
      });
    } else if (SESSION_WRITTEN.has(name)) {
      // A running session's working folder goes when it ends; a submit's staged copy is half made.
      const leave = (path: string) => name === 'sessions' && (/^\d+\/work$/.test(path) || path.startsWith('.submit-'));
      const copied = await mirror(from.root, name, join(to, name), leave, BACKUP_WALK);
      bytes += copied.bytes;
      leftOut.push(...copied.leftOut.map((p) => `${name}/${p}`));
    }
  }
  await mkdir(join(to, 'trees'), { mode: 0o755 });
  bytes += await serverBytes(to);
  await writeFile(join(to, 'backup.json'), `${JSON.stringify({ version: VERSION, takenAt: new Date().toISOString(), from: from.root, ...counts }, null, 2)}\n`);
  return { dest: to, ...counts, bytes, leftOut };
}

function halfMade(rel: string): boolean {
  const parts = rel.split(sep);
  return parts.at(-1)!.startsWith('.partial-') || (parts[0] === 'blobs' && parts[1] === '.tmp' && parts.length > 2);
}

/** The bytes of the server's own folders in the copy, and of the database. */
async function serverBytes(dir: string): Promise<number> {
  const { lstat } = await import('node:fs/promises');
  let total = (await lstat(join(dir, 'khd.db'))).size;
  const walkDir = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) await walkDir(child);
      else if (entry.isFile()) total += (await lstat(child)).size;
    }
  };
  for (const name of SERVER_WRITTEN) if (existsSync(join(dir, name))) await walkDir(join(dir, name));
  return total;
}
