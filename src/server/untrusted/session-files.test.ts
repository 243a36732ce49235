// What a hostile session leaves in its folders, and what the server's one reader makes of it.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openFile, readCapped, snapshot, treeSize, UntrustedFileError, walk, type Entry } from './session-files.js';

let root: string;
let outside: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'khd-untrusted-'));
  outside = mkdtempSync(join(tmpdir(), 'khd-secret-'));
  writeFileSync(join(outside, 'test_label'), 'the hidden labels\n');
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

/** The refusal `promise` ends with: its reason and message. */
async function refusal(promise: Promise<unknown>): Promise<{ why: string; message: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UntrustedFileError);
  return { why: (err as UntrustedFileError).why, message: (err as Error).message };
}

describe('readCapped', () => {
  it('reads a regular file', async () => {
    writeFileSync(join(root, 'predictions'), '1\n0\n');
    expect((await readCapped(root, 'predictions', 100)).toString()).toBe('1\n0\n');
  });

  it('refuses a symbolic link to a file outside, naming it', async () => {
    symlinkSync(join(outside, 'test_label'), join(root, 'predictions'));
    expect(await refusal(readCapped(root, 'predictions', 100))).toEqual({
      why: 'link',
      message: "'predictions' is a symbolic link: the server follows none",
    });
  });

  it('refuses a path through a folder that is a link', async () => {
    symlinkSync(outside, join(root, 'out'));
    expect(await refusal(readCapped(root, 'out/test_label', 100))).toMatchObject({ why: 'link' });
  });

  it('refuses a root folder that is a link', async () => {
    const link = join(root, 'state');
    symlinkSync(outside, link);
    expect(await refusal(readCapped(link, 'test_label', 100))).toMatchObject({ why: 'link' });
  });

  it('refuses a FIFO without blocking on it', async () => {
    execFileSync('mkfifo', [join(root, 'events.jsonl')]);
    expect(await refusal(readCapped(root, 'events.jsonl', 100))).toMatchObject({ why: 'not-regular' });
  });

  it('refuses a socket', async () => {
    const server = createServer().listen(join(root, 'sock'));
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      expect(await refusal(readCapped(root, 'sock', 100))).toMatchObject({ why: 'not-regular' });
    } finally {
      server.close();
    }
  });

  it('refuses a folder where a file is expected, and a file where a folder is', async () => {
    mkdirSync(join(root, 'predictions'));
    writeFileSync(join(root, 'file'), 'x');
    expect(await refusal(readCapped(root, 'predictions', 100))).toMatchObject({ why: 'not-regular' });
    expect(await refusal(readCapped(root, 'file/x', 100))).toMatchObject({ why: 'not-directory' });
  });

  it('refuses a file over the cap, and a sparse 20 GiB file without reading it', async () => {
    writeFileSync(join(root, 'big'), Buffer.alloc(101));
    expect(await refusal(readCapped(root, 'big', 100))).toEqual({ why: 'too-large', message: "'big' is over 100 B" });
    writeFileSync(join(root, 'sparse'), '');
    truncateSync(join(root, 'sparse'), 20 * 1024 ** 3);
    expect(statSync(join(root, 'sparse')).blocks).toBe(0);
    expect(await refusal(readCapped(root, 'sparse', 64 * 1024 ** 2))).toMatchObject({ why: 'too-large' });
  });

  it('says a missing file is missing', async () => {
    expect(await refusal(readCapped(root, 'nothing', 100))).toEqual({ why: 'missing', message: "'nothing' does not exist" });
  });

  it('keeps reading the file it opened when the name is swapped for a link afterwards', async () => {
    writeFileSync(join(root, 'events.jsonl'), 'mine\n');
    const { handle } = await openFile(root, 'events.jsonl');
    try {
      renameSync(join(root, 'events.jsonl'), join(root, 'old'));
      symlinkSync(join(outside, 'test_label'), join(root, 'events.jsonl'));
      const buffer = Buffer.alloc(100);
      const { bytesRead } = await handle.read(buffer, 0, 100, 0);
      expect(buffer.subarray(0, bytesRead).toString()).toBe('mine\n');
    } finally {
      await handle.close();
    }
  });
});

describe('walk', () => {
  it('reports links and never follows them', async () => {
    mkdirSync(join(root, 'a'));
    writeFileSync(join(root, 'a', 'w'), 'x');
    symlinkSync(outside, join(root, 'a', 'leak'));
    const seen: string[] = [];
    await walk(root, '', { maxEntries: 100 }, (e) => void seen.push(`${e.path}:${e.kind}`));
    expect(seen.sort()).toEqual(['a/leak:link', 'a/w:file', 'a:directory']);
  });

  it('refuses a folder swapped for a link while the walk runs', async () => {
    mkdirSync(join(root, 'a'));
    writeFileSync(join(root, 'a', 'w'), 'x');
    const visit = (e: Entry) => {
      if (e.path !== 'a') return;
      renameSync(join(root, 'a'), join(root, 'moved'));
      symlinkSync(outside, join(root, 'a'));
    };
    expect(await refusal(walk(root, '', { maxEntries: 100 }, visit))).toMatchObject({ why: 'link' });
  });

  it('stops at the entry cap and at the depth cap', async () => {
    for (let i = 0; i < 20; i++) writeFileSync(join(root, `f${i}`), '');
    expect(await refusal(walk(root, '', { maxEntries: 10 }, () => {}))).toMatchObject({ why: 'too-many-files' });
    rmSync(root, { recursive: true });
    mkdirSync(join(root, ...Array(12).fill('d')), { recursive: true });
    expect(await refusal(walk(root, '', { maxEntries: 100, maxDepth: 8 }, () => {}))).toMatchObject({ why: 'too-many-files' });
  });

  it('sizes a tree by what its files say, a sparse file at its full size, a link at its own', async () => {
    mkdirSync(join(root, 'best'));
    writeFileSync(join(root, 'best', 'w'), Buffer.alloc(1000));
    truncateSync(join(root, 'best', 'w'), 1 << 30);
    symlinkSync(join(outside, 'test_label'), join(root, 'best', 'leak'));
    expect(await treeSize(root, 'best', { maxEntries: 100 })).toEqual({
      bytes: (1 << 30) + join(outside, 'test_label').length,
      entries: 2,
      complete: true,
    });
    expect(await treeSize(root, '', { maxEntries: 2 })).toMatchObject({ entries: 2, complete: false });
  });
});

describe('snapshot', () => {
  const limits = { maxEntries: 100, maxBytes: 1024 * 1024, what: "checkpoint 'best'" };

  it('copies files and folders into a folder of the server, setuid and 0777 modes dropped', async () => {
    mkdirSync(join(root, 'best', 'sub'), { recursive: true });
    writeFileSync(join(root, 'best', 'model.pt'), 'weights');
    writeFileSync(join(root, 'best', 'sub', 'run'), '#!/bin/sh\n');
    chmodSync(join(root, 'best', 'sub', 'run'), 0o4777);
    chmodSync(join(root, 'best', 'sub'), 0o777);
    const dest = join(outside, 'copy');
    expect(await snapshot(root, 'best', dest, limits)).toEqual({ bytes: 17, files: 2 });
    expect(readFileSync(join(dest, 'model.pt'), 'utf8')).toBe('weights');
    expect(statSync(join(dest, 'sub', 'run')).mode & 0o7777).toBe(0o644);
    expect(statSync(join(dest, 'sub')).mode & 0o7777).toBe(0o755);
    expect(statSync(dest).uid).toBe(process.getuid!());
  });

  it('refuses a checkpoint holding a link, naming it', async () => {
    mkdirSync(join(root, 'best'));
    symlinkSync(join(outside, 'test_label'), join(root, 'best', 'leak'));
    expect(await refusal(snapshot(root, 'best', join(outside, 'copy'), limits))).toEqual({
      why: 'link',
      message: "checkpoint 'best' holds a symbolic link, 'leak': it may hold only files and folders",
    });
  });

  it('refuses a checkpoint that is itself a link', async () => {
    symlinkSync(outside, join(root, 'best'));
    expect(await refusal(snapshot(root, 'best', join(outside, 'copy'), limits))).toMatchObject({ why: 'link' });
  });

  it('refuses a FIFO inside, and a sparse file over the cap without reading it', async () => {
    mkdirSync(join(root, 'best'));
    execFileSync('mkfifo', [join(root, 'best', 'pipe')]);
    expect(await refusal(snapshot(root, 'best', join(outside, 'a'), limits))).toMatchObject({ why: 'not-regular' });
    rmSync(join(root, 'best', 'pipe'));
    writeFileSync(join(root, 'best', 'sparse'), '');
    truncateSync(join(root, 'best', 'sparse'), 20 * 1024 ** 3);
    expect(await refusal(snapshot(root, 'best', join(outside, 'b'), limits))).toEqual({
      why: 'too-large',
      message: "checkpoint 'best' is over 1 MB",
    });
  });
});
