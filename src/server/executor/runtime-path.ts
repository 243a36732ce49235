import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder holding the `nsml` Python package, found from this module's location so it works
 * from the sources (vitest), from the bundle in dist/, and from an installed package.
 */
export function nsmlRuntimeDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'python');
    if (existsSync(join(candidate, 'nsml', '__init__.py'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('the nsml runtime (python/nsml) is missing from this khd install');
    dir = parent;
  }
}
