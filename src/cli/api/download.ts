import { existsSync, lstatSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { x as extract } from 'tar';
import { formatSize } from '../../protocol/sizes.js';
import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import type { ApiClient } from './client.js';

export interface Downloaded {
  files: number;
  bytes: number;
  leftOut: string[];
}

/** How often a terminal's progress line is redrawn. */
const PROGRESS_MS = 200;

/**
 * Fetches a tar from the server (`url`, `params`) and unpacks it into `dest`, a folder that must
 * not exist yet (khd never writes into one of yours): only files and folders are made, no path
 * leaves `dest` (node-tar refuses `..` and absolute names), nothing is followed. A download cut
 * short leaves nothing behind. On a terminal, a progress line by bytes against what the server
 * said the download holds.
 */
export async function downloadInto(ctx: Context, api: ApiClient, url: string, params: Record<string, string | undefined>, dest: string): Promise<Downloaded> {
  if (existsSync(dest) || isLink(dest)) throw new CliError(`${dest} already exists: give a folder that does not exist yet`);
  const response = await api.stream({ method: 'GET', url, params, timeout: 0 });
  const total = Number(response.headers['x-khd-bytes'] ?? 0);
  const files = Number(response.headers['x-khd-files'] ?? 0);
  const leftHeader = response.headers['x-khd-left-out'] as string | undefined;
  const leftOut = leftHeader ? decodeURIComponent(leftHeader).split('\n') : [];
  let received = 0;
  let drawn = 0;
  const tty = ctx.io.stderrIsTTY;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      const now = Date.now();
      if (tty && now - drawn >= PROGRESS_MS) {
        drawn = now;
        ctx.io.err(`\r… ${formatSize(Math.min(received, total))} of ${formatSize(total)}`);
      }
      done(null, chunk);
    },
  });
  await mkdir(dest, { recursive: true });
  try {
    await pipeline(
      response.body,
      count,
      extract({
        cwd: dest,
        strict: true,
        // Files and folders only: no link, device or FIFO is ever made here.
        filter: (_path, entry) => 'type' in entry && (entry.type === 'File' || entry.type === 'Directory'),
        preserveOwner: false,
      }),
    );
  } catch (err) {
    await rm(dest, { recursive: true, force: true });
    throw new CliError(`the download was cut short (${(err as Error).message}): nothing was kept; run it again`);
  } finally {
    if (tty && drawn > 0) ctx.io.err('\r\x1b[K');
  }
  return { files, bytes: total, leftOut };
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** `✓ 12 files, 3.4 MB into DEST`, and what the server left out. */
export function sayDownloaded(ctx: Context, d: Downloaded, dest: string): void {
  ctx.io.err(`✓ ${d.files} file${d.files === 1 ? '' : 's'}, ${formatSize(d.bytes)} into ${dest}\n`);
  if (d.leftOut.length > 0) ctx.io.err(`  left out (links and other non-files): ${d.leftOut.join(', ')}\n`);
}
