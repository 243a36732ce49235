import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manifestOf } from '../../../test/helpers/craft-tar.js';
import { TreeBuilder } from './trees.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'khd-trees-'));
  mkdirSync(join(root, 'blobs'));
  mkdirSync(join(root, 'trees'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const files = { 'main.py': 'print(1)\n', 'lib/a.py': 'A = 1\n', 'lib/copy.py': 'A = 1\n', 'run.sh': '#!/bin/sh\n' };
const store = (sha: string, text: string) => writeFileSync(join(root, 'blobs', sha), text, { mode: 0o644 });
const contentPath = (sha: string) => join(root, 'blobs', sha);

describe('TreeBuilder: a tree laid out as its contents arrive', () => {
  it('places what is stored at once and the rest as it arrives; nothing is at its place before finish', async () => {
    const manifest = manifestOf(files).map((e) => (e.path === 'run.sh' ? { ...e, mode: 0o755 } : e));
    const sha = Object.fromEntries(manifest.map((e) => [e.path, e.sha256]));
    store(sha['main.py']!, files['main.py']);
    const dest = join(root, 'trees', 'key');
    const tree = new TreeBuilder(join(root, 'trees'), manifest, contentPath);
    const placing = tree.start((s) => s === sha['main.py']);
    const [staging] = readdirSync(join(root, 'trees'));
    expect(staging).toMatch(/^\.partial-/);
    await placing;
    expect(existsSync(join(root, 'trees', staging!, 'lib'))).toBe(true);
    store(sha['lib/a.py']!, files['lib/a.py']);
    tree.arrived(sha['lib/a.py']!, manifest[1]!);
    // One content, two paths: both placed at once.
    expect(readFileSync(join(root, 'trees', staging!, 'lib/copy.py'), 'utf8')).toBe('A = 1\n');
    expect(existsSync(dest)).toBe(false);
    store(sha['run.sh']!, files['run.sh']);
    tree.arrived(sha['run.sh']!, manifest.find((e) => e.path === 'run.sh')!);
    await tree.finish(dest);
    expect(readdirSync(join(root, 'trees'))).toEqual(['key']);
    expect(readFileSync(join(dest, 'main.py'), 'utf8')).toBe(files['main.py']);
    // Plain files are links to the stored content; an executable is a copy of its own, 0755.
    expect(statSync(join(dest, 'lib/a.py')).ino).toBe(statSync(contentPath(sha['lib/a.py']!)).ino);
    expect(statSync(join(dest, 'run.sh')).ino).not.toBe(statSync(contentPath(sha['run.sh']!)).ino);
    expect(statSync(join(dest, 'run.sh')).mode & 0o777).toBe(0o755);
  });

  it('places a content that arrived while the folders were being made, at finish', async () => {
    const manifest = manifestOf({ 'deep/er/x.py': 'X\n' });
    store(manifest[0]!.sha256, 'X\n');
    const dest = join(root, 'trees', 'key');
    const tree = new TreeBuilder(join(root, 'trees'), manifest, contentPath);
    const placing = tree.start(() => false);
    tree.arrived(manifest[0]!.sha256, manifest[0]!);
    await placing;
    await tree.finish(dest);
    expect(readFileSync(join(dest, 'deep/er/x.py'), 'utf8')).toBe('X\n');
  });

  it('places an entry sent without a hash when its own content arrives, and refuses to finish while one is missing', async () => {
    const manifest = manifestOf({ 'main.py': files['main.py'], 'lib/a.py': files['lib/a.py'], 'lib/b.py': files['lib/a.py'] });
    const sha = manifest[1]!.sha256;
    // lib/a.py and lib/b.py are sent unhashed: each is placed from the content it arrived with.
    const sent = manifest.map((e) => (e.path.startsWith('lib/') ? { path: e.path, size: e.size, mode: e.mode } : e));
    store(manifest[0]!.sha256, files['main.py']);
    store(sha, files['lib/a.py']);
    const dest = join(root, 'trees', 'key');
    const tree = new TreeBuilder(join(root, 'trees'), sent, contentPath);
    const placing = tree.start(() => true);
    // Arrived before the folders were made: placed at finish.
    tree.arrived(sha, sent[1]!);
    await placing;
    await expect(tree.finish(dest)).rejects.toThrow("'lib/b.py' has no content");
    tree.arrived(sha, sent[2]!);
    await tree.finish(dest);
    expect(readdirSync(join(dest, 'lib')).sort()).toEqual(['a.py', 'b.py']);
    expect(statSync(join(dest, 'lib/b.py')).ino).toBe(statSync(contentPath(sha)).ino);
    expect(readFileSync(join(dest, 'main.py'), 'utf8')).toBe(files['main.py']);
  });

  it('fails at finish when a content never arrived, and abort leaves nothing behind', async () => {
    const manifest = manifestOf(files);
    const tree = new TreeBuilder(join(root, 'trees'), manifest, contentPath);
    const placing = tree.start(() => false);
    await placing;
    await expect(tree.finish(join(root, 'trees', 'key'))).rejects.toThrow(/ENOENT/);
    await tree.abort();
    expect(readdirSync(join(root, 'trees'))).toEqual([]);
  });

  it('leaves a tree laid out meanwhile by an upload of the same tree as it is', async () => {
    const manifest = manifestOf({ 'main.py': files['main.py'] });
    store(manifest[0]!.sha256, files['main.py']);
    const dest = join(root, 'trees', 'key');
    const tree = new TreeBuilder(join(root, 'trees'), manifest, contentPath);
    await tree.start(() => true);
    mkdirSync(dest);
    writeFileSync(join(dest, 'main.py'), 'the other upload’s');
    await tree.finish(dest);
    expect(readFileSync(join(dest, 'main.py'), 'utf8')).toBe('the other upload’s');
    expect(readdirSync(join(root, 'trees'))).toEqual(['key']);
  });
});
