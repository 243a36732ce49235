import { execFileSync } from 'node:child_process';
import { chmodSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTree } from '../../test/helpers/tree.js';
import { scanProject } from './scan.js';

const trees: { cleanup(): void }[] = [];
afterEach(() => trees.splice(0).forEach((t) => t.cleanup()));

async function scan(files: Record<string, string>) {
  const tree = makeTree(files);
  trees.push(tree);
  return { root: tree.root, result: await scanProject(tree.root, { useIgnoreRules: true }) };
}

const paths = (r: Awaited<ReturnType<typeof scanProject>>) => r.included.map((f) => f.path);
const reasonOf = (r: Awaited<ReturnType<typeof scanProject>>, path: string) => r.leftOut.find((l) => l.path === path)?.reason;

describe('scanProject with .nsmlignore', () => {
  it('leaves out the built-in folders and says which default rule did it', async () => {
    const { result } = await scan({
      'main.py': 'print(1)', '.git/HEAD': 'ref', '__pycache__/m.pyc': 'x', 'venv/bin/python': 'x',
      'node_modules/a/index.js': 'x', '.idea/ws.xml': 'x', 'lib/util.pyc': 'x', 'lib/util.py': 'x',
    });
    expect(paths(result)).toEqual(['lib/util.py', 'main.py']);
    expect(reasonOf(result, '.git')).toBe('default: .git/');
    expect(reasonOf(result, 'venv')).toBe('default: venv/');
    expect(reasonOf(result, 'lib/util.pyc')).toBe('default: *.py[cod]');
  });

  it('applies negation after an exclusion, and names the .nsmlignore line', async () => {
    const { result } = await scan({
      '.nsmlignore': '# weights\n*.pth\n!keep.pth\n',
      'main.py': '', 'big.pth': 'x', 'keep.pth': 'x', 'sub/other.pth': 'x',
    });
    expect(paths(result)).toEqual(['.nsmlignore', 'keep.pth', 'main.py']);
    expect(reasonOf(result, 'big.pth')).toBe('.nsmlignore:2: *.pth');
    expect(reasonOf(result, 'sub/other.pth')).toBe('.nsmlignore:2: *.pth');
  });

  it('anchors a pattern with a leading slash to the project root', async () => {
    const { result } = await scan({ '.nsmlignore': '/data\n', 'main.py': '', 'data/a.csv': '', 'src/data/b.csv': '' });
    expect(paths(result)).toEqual(['.nsmlignore', 'main.py', 'src/data/b.csv']);
  });

  it('matches a trailing-slash pattern only against folders', async () => {
    const { result } = await scan({ '.nsmlignore': 'logs/\n', 'main.py': '', 'logs/x.txt': '', 'src/logs': 'a file' });
    expect(paths(result)).toEqual(['.nsmlignore', 'main.py', 'src/logs']);
    expect(result.leftOut.find((l) => l.path === 'logs')?.directory).toBe(true);
  });

  it('cannot re-include a file inside an excluded folder, as git', async () => {
    const { result } = await scan({ '.nsmlignore': 'out/\n!out/keep.txt\n', 'main.py': '', 'out/keep.txt': '' });
    expect(paths(result)).toEqual(['.nsmlignore', 'main.py']);
  });

  it('lets .nsmlignore re-include what a default rule left out', async () => {
    const { result } = await scan({ '.nsmlignore': '!env/\n', 'main.py': '', 'env/config.yaml': '' });
    expect(paths(result)).toContain('env/config.yaml');
  });

  it('sends a link to a file inside the project as that file, and leaves out the other links and FIFOs, saying why', async () => {
    const { root } = await scan({ 'main.py': '', 'real.txt': 'x', 'lib/a.py': 'a' });
    symlinkSync('/etc/hostname', join(root, 'outside'));
    symlinkSync('../main.py', join(root, 'lib', 'up'));
    symlinkSync('real.txt', join(root, 'inside'));
    symlinkSync('lib', join(root, 'folder-link'));
    symlinkSync('nowhere', join(root, 'dangling'));
    execFileSync('mkfifo', [join(root, 'pipe')]);
    const result = await scanProject(root, { useIgnoreRules: true });
    expect(paths(result)).toEqual(['inside', 'lib/a.py', 'lib/up', 'main.py', 'real.txt']);
    expect(result.included.find((f) => f.path === 'inside')).toMatchObject({ readFrom: 'real.txt', size: 1 });
    expect(result.included.find((f) => f.path === 'lib/up')?.readFrom).toBe('main.py');
    expect(reasonOf(result, 'outside')).toBe('symbolic link pointing outside the project (not followed)');
    expect(reasonOf(result, 'folder-link')).toBe('symbolic link to a folder (not followed)');
    expect(reasonOf(result, 'dangling')).toBe('broken symbolic link');
    expect(reasonOf(result, 'pipe')).toMatch(/FIFO/);
  });

  it('keeps the executable bit and nothing else of the mode', async () => {
    const { root } = await scan({ 'main.py': '', 'run.sh': '#!/bin/sh' });
    chmodSync(join(root, 'run.sh'), 0o4775);
    chmodSync(join(root, 'main.py'), 0o666);
    const result = await scanProject(root, { useIgnoreRules: true });
    expect(result.included.map((f) => [f.path, f.mode])).toEqual([['main.py', 0o644], ['run.sh', 0o755]]);
  });

  it('ignores nothing when asked for a dataset folder', async () => {
    const tree = makeTree({ 'train/.git/x': '', 'train/a.txt': '', 'test_label': '' });
    trees.push(tree);
    const result = await scanProject(tree.root, { useIgnoreRules: false });
    expect(paths(result)).toEqual(['test_label', 'train/.git/x', 'train/a.txt']);
  });
});
