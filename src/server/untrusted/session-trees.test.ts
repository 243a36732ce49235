// Folders a hostile session leaves (links, FIFOs, sparse files, folders swapped mid-walk), walked,
// sized and copied by the server's one reader.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostileFolders, refusal } from '../../../test/helpers/untrusted.js';
import { snapshot, treeSize, walk, type Entry } from './session-trees.js';

const dirs = hostileFolders();

describe('walk', () => {
  it('reports links and never follows them', async () => {
    mkdirSync(join(dirs.root, 'a'));
    writeFileSync(join(dirs.root, 'a', 'w'), 'x');
    symlinkSync(dirs.outside, join(dirs.root, 'a', 'leak'));
    const seen: string[] = [];
    await walk(dirs.root, '', { maxEntries: 100 }, (e) => void seen.push(`${e.path}:${e.kind}`));
    expect(seen.sort()).toEqual(['a/leak:link', 'a/w:file', 'a:directory']);
  });

  it('refuses a folder swapped for a link while the walk runs', async () => {
    mkdirSync(join(dirs.root, 'a'));
    writeFileSync(join(dirs.root, 'a', 'w'), 'x');
    const visit = (e: Entry) => {
      if (e.path !== 'a') return;
      renameSync(join(dirs.root, 'a'), join(dirs.root, 'moved'));
      symlinkSync(dirs.outside, join(dirs.root, 'a'));
    };
    expect(await refusal(walk(dirs.root, '', { maxEntries: 100 }, visit))).toMatchObject({ why: 'link' });
  });

  it('stops at the entry cap and at the depth cap', async () => {
    for (let i = 0; i < 20; i++) writeFileSync(join(dirs.root, `f${i}`), '');
    expect(await refusal(walk(dirs.root, '', { maxEntries: 10 }, () => {}))).toMatchObject({ why: 'too-many-files' });
    rmSync(dirs.root, { recursive: true });
    mkdirSync(join(dirs.root, ...Array(12).fill('d')), { recursive: true });
    expect(await refusal(walk(dirs.root, '', { maxEntries: 100, maxDepth: 8 }, () => {}))).toMatchObject({ why: 'too-many-files' });
  });

  it('sizes a tree by what its files say, a sparse file at its full size, a link at its own', async () => {
    mkdirSync(join(dirs.root, 'best'));
    writeFileSync(join(dirs.root, 'best', 'w'), Buffer.alloc(1000));
    truncateSync(join(dirs.root, 'best', 'w'), 1 << 30);
    symlinkSync(join(dirs.outside, 'test_label'), join(dirs.root, 'best', 'leak'));
    expect(await treeSize(dirs.root, 'best', { maxEntries: 100 })).toEqual({
      bytes: (1 << 30) + join(dirs.outside, 'test_label').length,
      entries: 2,
      complete: true,
    });
    expect(await treeSize(dirs.root, '', { maxEntries: 2 })).toMatchObject({ entries: 2, complete: false });
  });
});

describe('snapshot', () => {
  const limits = { maxEntries: 100, maxBytes: 1024 * 1024, what: "checkpoint 'best'" };

  it('copies files and folders into a folder of the server, setuid and 0777 modes dropped', async () => {
    mkdirSync(join(dirs.root, 'best', 'sub'), { recursive: true });
    writeFileSync(join(dirs.root, 'best', 'model.pt'), 'weights');
    writeFileSync(join(dirs.root, 'best', 'sub', 'run'), '#!/bin/sh\n');
    chmodSync(join(dirs.root, 'best', 'sub', 'run'), 0o4777);
    chmodSync(join(dirs.root, 'best', 'sub'), 0o777);
    const dest = join(dirs.outside, 'copy');
    expect(await snapshot(dirs.root, 'best', dest, limits)).toEqual({ bytes: 17, files: 2 });
    expect(readFileSync(join(dest, 'model.pt'), 'utf8')).toBe('weights');
    expect(statSync(join(dest, 'sub', 'run')).mode & 0o7777).toBe(0o644);
    expect(statSync(join(dest, 'sub')).mode & 0o7777).toBe(0o755);
    expect(statSync(dest).uid).toBe(process.getuid!());
  });

  it('refuses a checkpoint holding a link, naming it', async () => {
    mkdirSync(join(dirs.root, 'best'));
    symlinkSync(join(dirs.outside, 'test_label'), join(dirs.root, 'best', 'leak'));
    expect(await refusal(snapshot(dirs.root, 'best', join(dirs.outside, 'copy'), limits))).toEqual({
      why: 'link',
      message: "checkpoint 'best' holds a symbolic link, 'leak': it may hold only files and folders",
    });
  });

  it('refuses a checkpoint that is itself a link', async () => {
    symlinkSync(dirs.outside, join(dirs.root, 'best'));
    expect(await refusal(snapshot(dirs.root, 'best', join(dirs.outside, 'copy'), limits))).toMatchObject({ why: 'link' });
  });

  it('refuses a FIFO inside, and a sparse file over the cap without reading it', async () => {
    mkdirSync(join(dirs.root, 'best'));
    execFileSync('mkfifo', [join(dirs.root, 'best', 'pipe')]);
    expect(await refusal(snapshot(dirs.root, 'best', join(dirs.outside, 'a'), limits))).toMatchObject({ why: 'not-regular' });
    rmSync(join(dirs.root, 'best', 'pipe'));
    writeFileSync(join(dirs.root, 'best', 'sparse'), '');
    truncateSync(join(dirs.root, 'best', 'sparse'), 20 * 1024 ** 3);
    expect(await refusal(snapshot(dirs.root, 'best', join(dirs.outside, 'b'), limits))).toEqual({
      why: 'too-large',
      message: "checkpoint 'best' is over 1 MB",
    });
  });
});
