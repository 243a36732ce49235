import { once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { Header, Pax } from 'tar';
import { formatSize } from '../../protocol/sizes.js';
import { openFile, openFileAt, openFolder, readChunks, UntrustedFileError } from './session-files.js';
import { walk, type WalkLimits } from './session-trees.js';

const BLOCK = 512;
const USTAR_MAX_SIZE = 8 ** 11 - 1;

export interface TarLimits extends WalkLimits {
  maxBytes: number;
  /** How refusals name what is sent (`session kim/mnist/3's folder`). */
  what: string;
}

/** What a download holds, found before it is sent: the client shows progress against it. */
export interface TarPlan {
  files: number;
  bytes: number;
  /** Links and other non-regular entries, left out by name. */
  leftOut: string[];
}

/** Whether `rel` of `root` is a file or a folder (no link followed), or why it cannot be sent. */
async function kindOf(root: string, rel: string): Promise<'file' | 'directory'> {
  if (!rel) return 'directory';
  try {
    await (await openFolder(root, rel)).close();
    return 'directory';
  } catch (err) {
    if (!(err instanceof UntrustedFileError) || err.why === 'missing' || err.why === 'link') throw err;
    const { handle } = await openFile(root, rel);
    await handle.close();
    return 'file';
  }
}

/**
 * Counts what `tarOf` would send of `rel` under `root` (a file, or a folder's files and folders),
 * within the limits: too many entries or too many bytes is refused now, by name, before
 * anything is sent.
 */
export async function planTar(root: string, rel: string, limits: TarLimits): Promise<TarPlan> {
  const plan: TarPlan = { files: 0, bytes: 0, leftOut: [] };
  const tooLarge = () => new UntrustedFileError(rel || '.', 'too-large', `${limits.what} is over ${formatSize(limits.maxBytes)}`);
  if ((await kindOf(root, rel)) === 'file') {
    const { handle, stat } = await openFile(root, rel);
    await handle.close();
    if (stat.size > limits.maxBytes) throw tooLarge();
    return { files: 1, bytes: stat.size, leftOut: [] };
  }
  await walk(root, rel, limits, (e) => {
    if (e.kind === 'link' || e.kind === 'other') plan.leftOut.push(e.path);
    if (e.kind !== 'file') return;
    plan.files++;
    plan.bytes += e.stat.size;
    if (plan.bytes > limits.maxBytes) throw tooLarge();
  });
  return plan;
}

function header(path: string, type: 'File' | 'Directory', size: number, mtime: Date): Buffer[] {
  const fields = { path, type, size, mode: type === 'File' ? 0o644 : 0o755, mtime, uid: 0, gid: 0, uname: '', gname: '' };
  const block = Buffer.alloc(BLOCK);
  // A path too long for ustar goes in a PAX header before it; a size only where ustar's cannot hold it.
  return new Header(fields).encode(block, 0) ? [new Pax({ ...fields, size: size > USTAR_MAX_SIZE ? size : undefined }).encode(), block] : [block];
}

/**
 * `rel` of `root` (a folder the session wrote, or a file of it) as a tar, read as it is sent
 * through the untrusted reader: every folder entered by descriptor, every file opened without
 * following a link and only if it is a regular file, links and anything else left out. Each
 * file is sent at the size it had when opened: one that grows is cut there, one that shrinks is
 * padded, so the tar stays whole. The names are relative to `rel` (a file: its own name); files
 * are 0644 and folders 0755 in it, whatever the session made them.
 */
export function tarOf(root: string, rel: string, limits: TarLimits): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const write = async (chunk: Buffer) => {
    if (!out.write(chunk)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
    if (out.destroyed) throw new Error('the download was closed');
  };
  let bytes = 0;
  const sendFile = async (handle: FileHandle, path: string, size: number, mtime: Date) => {
    if ((bytes += size) > limits.maxBytes) throw new UntrustedFileError(path, 'too-large', `${limits.what} is over ${formatSize(limits.maxBytes)}`);
    for (const block of header(path, 'File', size, mtime)) await write(block);
    const sent = await readChunks(handle, 0, size, (chunk) => write(Buffer.from(chunk)));
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size - sent + pad > 0) await write(Buffer.alloc(size - sent + pad));
  };
  void (async () => {
    if ((await kindOf(root, rel)) === 'file') {
      const { handle, stat } = await openFile(root, rel);
      try {
        await sendFile(handle, rel.split('/').pop()!, stat.size, stat.mtime);
      } finally {
        await handle.close();
      }
    } else {
      await walk(root, rel, limits, async (e, parent, name) => {
        if (e.kind === 'directory') {
          for (const block of header(`${e.path}/`, 'Directory', 0, e.stat.mtime)) await write(block);
        } else if (e.kind === 'file') {
          // Swapped for something else since it was listed: left out, as a link would be.
          const opened = await openFileAt(parent, name, e.path).catch((err: unknown) => {
            if (err instanceof UntrustedFileError) return undefined;
            throw err;
          });
          if (!opened) return;
          const { handle, stat } = opened;
          try {
            await sendFile(handle, e.path, stat.size, stat.mtime);
          } finally {
            await handle.close();
          }
        }
      });
    }
    await write(Buffer.alloc(2 * BLOCK));
    out.end();
  })().catch((err: Error) => out.destroy(err));
  return out;
}
