import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointInfo } from '../../protocol/types.js';
import { UntrustedFileError } from '../untrusted/session-files.js';
import { listFolder, treeSize, type Entry } from '../untrusted/session-trees.js';
import type { EventState } from './session-events.js';

/**
 * The most files and folders of one checkpoint the server walks: sizing stops there (the size
 * shown is then a lower bound), and a submit refuses a checkpoint with more.
 */
export const MAX_CHECKPOINT_FILES = 10_000;
/** The most checkpoints of one session listed. */
const MAX_CHECKPOINTS = 10_000;

/**
 * A session's checkpoints: the folders in its checkpoint folder, less those starting with `.`
 * (saves in progress). The session wrote that folder: anything else in it (a file, a link) is
 * not a checkpoint, and nothing is followed.
 */
export async function checkpointFolders(dir: string): Promise<Entry[]> {
  try {
    const entries = await listFolder(dir, '', MAX_CHECKPOINTS);
    return entries.filter((e) => e.kind === 'directory' && !e.path.startsWith('.'));
  } catch (err) {
    if (err instanceof UntrustedFileError && err.why === 'missing') return [];
    throw err;
  }
}

/**
 * A checkpoint's apparent size (a sparse file at its full size), links never followed; 0 for
 * one removed, or swapped for a link, since it was listed.
 */
export async function checkpointSize(dir: string, name: string): Promise<number> {
  try {
    return (await treeSize(dir, name, { maxEntries: MAX_CHECKPOINT_FILES })).bytes;
  } catch (err) {
    if (err instanceof UntrustedFileError) return 0;
    throw err;
  }
}

export async function listCheckpoints(dir: string, events: EventState, startedAt: string | null): Promise<CheckpointInfo[]> {
  const folders = await checkpointFolders(dir);
  const start = startedAt ? Date.parse(startedAt) : null;
  folders.sort((a, b) => a.path.localeCompare(b.path, 'en', { numeric: true }));
  return Promise.all(
    folders.map(async ({ path: name, stat }) => {
      const save = events.saves.get(name);
      const at = save?.at ?? stat.mtimeMs;
      return {
        checkpoint: name,
        lastModified: new Date(at).toISOString(),
        elapsed: start === null ? null : Math.max(0, Math.round((at - start) / 1000)),
        summary: save?.summary ?? null,
        size: await checkpointSize(dir, name),
      };
    }),
  );
}

export async function removeCheckpoint(dir: string, name: string): Promise<void> {
  // rm removes a link itself, never what it points to.
  await rm(join(dir, name), { recursive: true, force: true });
}

/**
 * The checkpoints' total size per session. An ended session's checkpoints change only by being
 * removed, which changes the folder's mtime and names: its size is kept until then, so `ps` and
 * the dashboard's list (every 2 s, per open tab) do not walk every checkpoint each time.
 */
export class CheckpointSizes {
  private readonly known = new Map<number, { key: string; size: number }>();

  async of(dir: string, folders: Entry[], sessionId: number, ended: boolean): Promise<number> {
    const measure = async () => (await Promise.all(folders.map((f) => checkpointSize(dir, f.path)))).reduce((a, b) => a + b, 0);
    if (!ended) return measure();
    // The checkpoint folder itself: the server made it, and it is the session's mount point, never replaced by the session.
    const key = `${(await stat(dir).catch(() => undefined))?.mtimeMs ?? 0}/${folders.map((f) => f.path).join('/')}`;
    const known = this.known.get(sessionId);
    if (known?.key === key) return known.size;
    const size = await measure();
    this.known.set(sessionId, { key, size });
    return size;
  }

  forget(sessionId: number): void {
    this.known.delete(sessionId);
  }
}
