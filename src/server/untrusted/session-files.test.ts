// What a hostile session leaves in its folders, and what the server's one reader makes of it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostileFolders, refusal } from '../../../test/helpers/untrusted.js';
import { copyOut, openFile } from './session-files.js';

const dirs = hostileFolders();

/** Copies `rel` of the session's folder out, as the server copies a submit's predictions; the copy's text. */
async function copyText(rel: string, maxBytes: number, from = dirs.root): Promise<string> {
  const dest = join(dirs.outside, 'copy');
  await copyOut(from, rel, dest, maxBytes);
  return readFileSync(dest, 'utf8');
}

describe('copyOut', () => {
  it('reads a regular file', async () => {
    writeFileSync(join(dirs.root, 'predictions'), '1\n0\n');
    expect(await copyText('predictions', 100)).toBe('1\n0\n');
  });

  it('refuses a symbolic link to a file outside, naming it', async () => {
    symlinkSync(join(dirs.outside, 'test_label'), join(dirs.root, 'predictions'));
    expect(await refusal(copyText('predictions', 100))).toEqual({
      why: 'link',
      message: "'predictions' is a symbolic link: the server follows none",
    });
  });

  it('refuses a path through a folder that is a link', async () => {
    symlinkSync(dirs.outside, join(dirs.root, 'out'));
    expect(await refusal(copyText('out/test_label', 100))).toMatchObject({ why: 'link' });
  });

  it('refuses a root folder that is a link', async () => {
    const link = join(dirs.root, 'state');
    symlinkSync(dirs.outside, link);
    expect(await refusal(copyText('test_label', 100, link))).toMatchObject({ why: 'link' });
  });

  it('refuses a FIFO without blocking on it', async () => {
    execFileSync('mkfifo', [join(dirs.root, 'events.jsonl')]);
    expect(await refusal(copyText('events.jsonl', 100))).toMatchObject({ why: 'not-regular' });
  });

  it('refuses a socket', async () => {
    const server = createServer().listen(join(dirs.root, 'sock'));
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      expect(await refusal(copyText('sock', 100))).toMatchObject({ why: 'not-regular' });
    } finally {
      server.close();
    }
  });

  it('refuses a folder where a file is expected, and a file where a folder is', async () => {
    mkdirSync(join(dirs.root, 'predictions'));
    writeFileSync(join(dirs.root, 'file'), 'x');
    expect(await refusal(copyText('predictions', 100))).toMatchObject({ why: 'not-regular' });
    expect(await refusal(copyText('file/x', 100))).toMatchObject({ why: 'not-directory' });
  });

  it('refuses a file over the cap, and a sparse 20 GiB file without reading it', async () => {
    writeFileSync(join(dirs.root, 'big'), Buffer.alloc(101));
    expect(await refusal(copyText('big', 100))).toEqual({ why: 'too-large', message: "'big' is over 100 B" });
    writeFileSync(join(dirs.root, 'sparse'), '');
    truncateSync(join(dirs.root, 'sparse'), 20 * 1024 ** 3);
    expect(statSync(join(dirs.root, 'sparse')).blocks).toBe(0);
    expect(await refusal(copyText('sparse', 64 * 1024 ** 2))).toMatchObject({ why: 'too-large' });
  });

  it('says a missing file is missing', async () => {
    expect(await refusal(copyText('nothing', 100))).toEqual({ why: 'missing', message: "'nothing' does not exist" });
  });

  it('keeps reading the file it opened when the name is swapped for a link afterwards', async () => {
    writeFileSync(join(dirs.root, 'events.jsonl'), 'mine\n');
    const { handle } = await openFile(dirs.root, 'events.jsonl');
    try {
      renameSync(join(dirs.root, 'events.jsonl'), join(dirs.root, 'old'));
      symlinkSync(join(dirs.outside, 'test_label'), join(dirs.root, 'events.jsonl'));
      const buffer = Buffer.alloc(100);
      const { bytesRead } = await handle.read(buffer, 0, 100, 0);
      expect(buffer.subarray(0, bytesRead).toString()).toBe('mine\n');
    } finally {
      await handle.close();
    }
  });
});
