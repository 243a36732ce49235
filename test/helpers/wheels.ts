import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TestPackage {
  name: string;
  version: string;
  /** The module's source (`NAME/__init__.py`). */
  source: string;
  requires?: string[];
}

export const MAKE_WHEELS = fileURLToPath(new URL('./make_wheels.py', import.meta.url));

/** Wheels of small packages in a fresh wheelhouse (make_wheels.py). */
export function wheelhouse(packages: TestPackage[]): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'khd-wheels-'));
  execFileSync('python3', [MAKE_WHEELS, dir, JSON.stringify(packages)]);
  // Read by installs that run as sessions' own uids, as an organiser's wheelhouse is.
  chmodSync(dir, 0o755);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
