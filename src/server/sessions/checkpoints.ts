import { rm } from 'node:fs/promises';
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
