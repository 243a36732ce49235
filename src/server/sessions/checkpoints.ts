import { lstatSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointInfo } from '../../protocol/types.js';
import type { EventState } from './session-events.js';

/** Bytes under a folder, links not followed. */
export function folderSize(path: string): number {
  let total = 0;
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  for (const name of readdirSync(path)) total += folderSize(join(path, name));
  return total;
}

/** The names of a session's checkpoints: its folders, less those starting with `.` (saves in progress). */
export function checkpointNames(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

export function listCheckpoints(dir: string, events: EventState, startedAt: string | null): CheckpointInfo[] {
  const names = checkpointNames(dir);
  const start = startedAt ? Date.parse(startedAt) : null;
  return names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).map((name) => {
    const st = lstatSync(join(dir, name));
    const save = events.saves.get(name);
    const at = save?.at ?? st.mtimeMs;
    return {
      checkpoint: name,
      lastModified: new Date(at).toISOString(),
      elapsed: start === null ? null : Math.max(0, Math.round((at - start) / 1000)),
      summary: save?.summary ?? null,
      size: folderSize(join(dir, name)),
    };
  });
}

export async function removeCheckpoint(dir: string, name: string): Promise<void> {
  await rm(join(dir, name), { recursive: true, force: true });
}
