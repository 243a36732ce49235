import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { ManifestEntry } from '../protocol/types.js';
import type { IncludedFile } from './scan.js';

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Hashes every included file; the server checks each against what arrives. */
export async function buildManifest(root: string, files: IncludedFile[]): Promise<ManifestEntry[]> {
  const manifest: ManifestEntry[] = [];
  for (const f of files) {
    manifest.push({ path: f.path, size: f.size, mode: f.mode, sha256: await sha256File(join(root, f.path)) });
  }
  return manifest;
}
