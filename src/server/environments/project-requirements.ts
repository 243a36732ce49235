import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_FILES, imageLine, normalise, parseRequirement, parseRequirementsTxt, type Requirement } from '../../protocol/requirements.js';
import type { PythonRuntime } from '../executor/executor.js';
import type { InstallLimits, Layers, PrepareHooks } from './layers.js';
import { installRequiresOf } from './probe.js';

/** A requirements file or setup.py larger than this is not a requirements file. */
const MAX_REQUIREMENTS_BYTES = 1024 * 1024;
const SYSTEM_PACKAGES_FILE = 'nsml_package.txt';
/** `-r` includes followed, at most. */
const MAX_INCLUDES = 16;

/**
 * A small file of the project's laid-out tree (the server's own hard links: regular files, no
 * links), or null when it is missing or too big to be what it claims.
 */
export function readSmall(tree: string, rel: string): string | null {
  try {
    const path = join(tree, rel);
    const st = lstatSync(path);
    if (!st.isFile() || st.size > MAX_REQUIREMENTS_BYTES) return null;
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The image the project names on the first line of setup.py or requirements.txt (`#nsml: …`), or null. */
export function imageOf(tree: string): string | null {
  for (const file of IMAGE_FILES) {
    const image = imageLine(readSmall(tree, file) ?? '');
    if (image) return image;
  }
  return null;
}

/**
 * requirements.txt (with its -r includes) and setup.py's install_requires, normalised. setup.py
 * is parsed, never run on the server; a computed list is got by running it in the sandbox.
 */
export async function requirementsOf(tree: string, runtime: PythonRuntime, layers: Layers, limits: InstallLimits, hooks: PrepareHooks): Promise<Requirement[]> {
  const found: Requirement[] = [];
  const seen = new Set<string>();
  const readTxt = (rel: string) => {
    if (seen.has(rel) || seen.size > MAX_INCLUDES) return;
    seen.add(rel);
    const text = readSmall(tree, rel);
    if (text === null) {
      if (rel !== 'requirements.txt') hooks.log([`khd: ${rel}, included with -r, is not in the upload: left out`]);
      return;
    }
    const parsed = parseRequirementsTxt(text);
    found.push(...parsed.requirements);
    for (const why of parsed.ignored) hooks.log([`khd: ${rel}: ${why}`]);
    for (const inc of parsed.includes) if (!inc.startsWith('/') && !inc.split('/').includes('..')) readTxt(inc);
  };
  readTxt('requirements.txt');
  const setup = readSmall(tree, 'setup.py');
  if (setup !== null) {
    const parsed = await installRequiresOf(runtime.executable, setup);
    if (parsed.kind === 'literal') found.push(...parsed.requirements.map(parseRequirement).filter((r): r is Requirement => r !== null));
    else if (parsed.kind === 'error') hooks.log([`khd: ${parsed.why}: its install_requires are left out`]);
    else if (parsed.kind === 'computed') found.push(...(await computedInstallRequires(setup, runtime, layers, limits, hooks)));
  }
  return normalise(found);
}

/** A setup.py that computes its list is run, in the sandbox with no network, with setup() caught. */
async function computedInstallRequires(setup: string, runtime: PythonRuntime, layers: Layers, limits: InstallLimits, hooks: PrepareHooks): Promise<Requirement[]> {
  const out: string[] = [];
  const result = await layers.run({ 'setup.py': setup, 'khd_setup_requires.py': SETUP_CAPTURE }, 'khd_setup_requires.py', runtime, [], false, limits, hooks, (lines) => out.push(...lines));
  const last = out.at(-1) ?? '';
  if (result.exitCode !== 0 || !last.startsWith('[')) {
    hooks.log(['khd: setup.py computes its install_requires, and running it failed: they are left out']);
    return [];
  }
  return (JSON.parse(last) as string[]).map(parseRequirement).filter((r): r is Requirement => r !== null);
}

/** The system packages of nsml_package.txt this server lacks (dpkg), named in the session's log. */
export function lackingSystemPackages(tree: string, has: (name: string) => boolean = dpkgHas): string[] {
  const text = readSmall(tree, SYSTEM_PACKAGES_FILE);
  if (text === null) return [];
  const wanted = text.split(/\r?\n/).map((l) => l.replace(/#.*/, '').trim()).filter((l) => /^[a-z0-9][a-z0-9.+-]*$/.test(l));
  return wanted.filter((p) => !has(p));
}

function dpkgHas(name: string): boolean {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('install ok installed');
  } catch {
    return false;
  }
}

/** Runs a setup.py in the sandbox with setup() replaced, and prints what it would install. */
const SETUP_CAPTURE = String.raw`
import json, sys
captured = {}
def setup(**kwargs):
    captured.update(kwargs)
try:
    import setuptools
    setuptools.setup = setup
except ImportError:
    pass
try:
    import distutils.core
    distutils.core.setup = setup
except ImportError:
    pass
sys.argv = ['setup.py', '--version']
exec(compile(open('setup.py').read(), 'setup.py', 'exec'), {'__name__': '__main__', '__file__': 'setup.py'})
requires = captured.get('install_requires') or []
if isinstance(requires, str):
    requires = [requires]
print(json.dumps([str(r) for r in requires]))
`;
