import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ManifestEntry } from '../protocol/types.js';
import type { HashCache } from './hash-cache.js';
import type { IncludedFile } from './scan.js';

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface ManifestProgress {
  /** Files whose hash came from the cache, and files read and hashed now. */
  cached: number;
  hashed: number;
  hashedBytes: number;
}

/**
 * Hashes every included file, through the hash cache when one is given: an unchanged file is
 * not read. The size in the manifest is what the file has now, so a file that changed since
 * the scan is described as it is.
 */
export async function buildManifest(
  root: string,
  files: IncludedFile[],
  cache?: HashCache,
  onFile?: (p: ManifestProgress) => void,
): Promise<ManifestEntry[]> {
  const progress: ManifestProgress = { cached: 0, hashed: 0, hashedBytes: 0 };
  const manifest: ManifestEntry[] = [];
  for (const f of files) {
    const abs = join(root, f.readFrom ?? f.path);
    const st = await lstat(abs, { bigint: true });
    const stamp = { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev };
    let sha256 = cache?.get(f.path, stamp);
    if (sha256) progress.cached += 1;
    else {
      sha256 = await sha256File(abs);
      cache?.set(f.path, stamp, sha256);
      progress.hashed += 1;
      progress.hashedBytes += Number(st.size);
    }
    manifest.push({ path: f.path, size: Number(st.size), mode: f.mode, sha256 });
    onFile?.(progress);
  }
  return manifest;
}
