import { createHash } from 'node:crypto';
import type { ManifestEntry } from './types.js';

/**
 * The name of a project's tree: the hash of its paths, executable bits and contents. The server
 * names laid-out trees by it; the CLI computes it from the hash cache to ask whether the tree
 * it is about to send is one the server already laid out for this user (the re-run fast path).
 */
export function treeKey(manifest: Pick<ManifestEntry, 'path' | 'mode' | 'sha256'>[]): string {
  const canonical = manifest.map((f) => [f.path, f.mode & 0o111 ? 1 : 0, f.sha256]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}
