import type { chmodSync, copyFileSync, linkSync } from 'node:fs';

/** The calls placeContent makes, passed in: it also runs, as its own source, on the writer thread. */
export interface PlaceCalls {
  linkSync: typeof linkSync;
  copyFileSync: typeof copyFileSync;
  chmodSync: typeof chmodSync;
}

/**
 * Puts a stored content at a file of a tree: a hard link (the tree is never written to), or a
 * copy when the content already has as many links as the file system allows (65,000 on ext4: an
 * empty `__init__.py` is one content for every project); an executable is a copy of its own,
 * 0755. Self-contained (it uses only its arguments): BlobWriter's thread runs its source.
 */
export function placeContent(fs: PlaceCalls, content: string, file: string, executable: boolean): void {
  if (executable) {
    fs.copyFileSync(content, file);
    fs.chmodSync(file, 0o755);
    return;
  }
  try {
    fs.linkSync(content, file);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EMLINK') throw err;
    fs.copyFileSync(content, file);
  }
}
