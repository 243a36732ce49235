import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A file or folder shipped with khd, found from this module's location upwards so it works from
 * the sources (vitest), from the bundle in dist/, and from an installed package. Undefined when
 * no ancestor has it.
 */
function shipped(relative: string): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, relative))) return join(dir, relative);
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The folder holding the `nsml` Python package. */
export function nsmlRuntimeDir(): string {
  const init = shipped(join('python', 'nsml', '__init__.py'));
  if (!init) throw new Error('the nsml runtime (python/nsml) is missing from this khd install');
  return dirname(dirname(init));
}

/** The built dashboard (`npm run build` writes it to dist/web), or undefined when it is not built. */
export function webDir(): string | undefined {
  const index = shipped(join('dist', 'web', 'index.html'));
  return index && dirname(index);
}
