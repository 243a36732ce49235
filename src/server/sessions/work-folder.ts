import { rm } from 'node:fs/promises';
import type { DataDir } from '../data-dir.js';
import { readyFiles, type UploadStore } from '../store/uploads.js';
import { copyTree, linkWorkFolder } from '../uploads/trees.js';

/**
 * A session's work folder, laid out fresh from its upload's tree (also for a session queued
 * before a restart whose folder was already laid out): hard links when the session runs as its
 * own uid (it cannot write into them), else a copy. Returns the tree's folder.
 */
export async function layOutWorkFolder(uploads: UploadStore, dataDir: DataDir, uploadId: string, work: string, ownUids: boolean): Promise<string> {
  const upload = uploads.get(uploadId);
  if (!upload?.tree) throw new Error(`upload ${uploadId} has no laid-out tree`);
  const tree = dataDir.tree(upload.tree);
  await rm(work, { recursive: true, force: true });
  if (ownUids) await linkWorkFolder(tree, work, readyFiles(upload));
  else await copyTree(tree, work);
  return tree;
}
