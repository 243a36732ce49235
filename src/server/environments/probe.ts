import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ProbedInfo } from '../store/environments.js';

const run = promisify(execFile);

/** Every installed distribution by normal name, the version, and (where torch is) whether it sees a GPU. */
const PROBE = String.raw`
import importlib.metadata as m, json, re, sys
installed = {}
for d in m.distributions():
    name = d.metadata.get('Name')
    if name:
        installed[re.sub(r'[-_.]+', '-', name).lower()] = d.version
gpus = False
if 'torch' in installed:
    try:
        import torch
        gpus = bool(torch.cuda.is_available())
    except Exception:
        pass
print(json.dumps({'version': sys.version.split()[0], 'installed': installed, 'gpus': gpus}))
`;

/** Asks the environment's interpreter what it holds (the organiser's interpreter, not a participant's). */
export async function probe(python: string): Promise<ProbedInfo> {
  const { stdout } = await run(python, ['-I', '-c', PROBE], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout) as ProbedInfo;
}

/**
 * The `install_requires` of a setup.py, read without running it: parsed with Python's own `ast`
 * (no code of the project runs). A list of literals, or a name bound to one at the top level,
 * is read; anything computed is reported as such, to be run only inside the sandbox.
 */
const INSTALL_REQUIRES = String.raw`
import ast, json, sys
source = sys.stdin.read()
try:
    tree = ast.parse(source)
except SyntaxError as e:
    print(json.dumps({'kind': 'error', 'why': 'setup.py does not parse: %s' % e})); sys.exit()
names = {}
for node in tree.body:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        names[node.targets[0].id] = node.value
found = None
for node in ast.walk(tree):
    if isinstance(node, ast.Call) and getattr(node.func, 'id', getattr(node.func, 'attr', None)) == 'setup':
        for kw in node.keywords:
            if kw.arg == 'install_requires':
                found = kw.value
if found is None:
    print(json.dumps({'kind': 'none'})); sys.exit()
if isinstance(found, ast.Name) and found.id in names:
    found = names[found.id]
try:
    value = ast.literal_eval(found)
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        print(json.dumps({'kind': 'literal', 'requirements': list(value)})); sys.exit()
except ValueError:
    pass
print(json.dumps({'kind': 'computed'}))
`;

export type InstallRequires = { kind: 'none' } | { kind: 'literal'; requirements: string[] } | { kind: 'computed' } | { kind: 'error'; why: string };

export async function installRequiresOf(python: string, source: string): Promise<InstallRequires> {
  const child = execFile(python, ['-I', '-c', INSTALL_REQUIRES], { timeout: 30_000, maxBuffer: 1024 * 1024 });
  child.stdin!.end(source);
  const stdout = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`parsing setup.py failed (exit ${code})`))));
  });
  return JSON.parse(stdout) as InstallRequires;
}
