import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { KhdError } from '../../protocol/errors.js';
import { pathProblem } from '../../protocol/paths.js';
import type { ManifestEntry, UploadLimits } from '../../protocol/types.js';

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const EXEC_MODE = 0o755;
const PLAIN_MODE = 0o644;

function invalid(message: string): KhdError {
  return new KhdError('KHD_UPLOAD_INVALID', `upload refused: ${message}`);
}

/**
 * Extracts a gzipped tar into `dest`, strictly: only regular files and folders, each file
 * named in the manifest with the same size and sha256, nothing else. Extraction happens in a
 * hidden sibling folder that is renamed to `dest` only when everything checked out, so a
 * cut-off or lying upload never leaves anything that could be run.
 */
export async function extractUpload(
  body: Readable,
  dest: string,
  manifest: ManifestEntry[],
  limits: UploadLimits,
): Promise<void> {
  const staging = join(dirname(dest), `.partial-${randomBytes(6).toString('hex')}`);
  await mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    await extractInto(body, staging, manifest, limits);
    await rename(staging, dest);
  } catch (err) {
    body.destroy();
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

function extractInto(body: Readable, root: string, manifest: ManifestEntry[], limits: UploadLimits): Promise<void> {
  const expected = new Map(manifest.map((e) => [e.path, e]));
  const received = new Set<string>();
  const jobs: Promise<void>[] = [];
  const abort = new AbortController();
  let entries = 0;
  let failure: unknown;

  return new Promise<void>((resolve, reject) => {
    // On the first problem: stop reading, abort the writes in flight, and only then reject,
    // so the caller's clean-up never races a write into the staging folder.
    const fail = (err: unknown) => {
      if (failure !== undefined) return;
      failure = err instanceof KhdError ? err : invalid(err instanceof Error ? err.message : String(err));
      body.unpipe();
      abort.abort();
      void Promise.allSettled(jobs).then(() => reject(failure));
    };
    const parser = new Parser({
      strict: true,
      noResume: true,
      onReadEntry: (entry: ReadEntry) => {
        if (failure !== undefined) return entry.resume();
        try {
          entries += 1;
          if (entries > limits.maxFiles * 2 + 16) throw invalid(`more than ${limits.maxFiles} entries`);
          jobs.push(acceptEntry(entry, root, expected, received, limits, abort.signal).catch(fail));
        } catch (err) {
          entry.resume();
          fail(err);
        }
      },
    });
    parser.on('warn', (_code: string, message: string | Error) => fail(message));
    parser.on('error', fail);
    parser.on('end', () => {
      void Promise.all(jobs).then(() => {
        if (failure !== undefined) return;
        const missing = manifest.filter((e) => !received.has(e.path)).map((e) => e.path);
        if (missing.length > 0) fail(invalid(`${missing.length} file(s) in the manifest never arrived: ${missing.slice(0, 5).join(', ')}`));
        else resolve();
      });
    });
    body.on('error', fail);
    body.on('close', () => {
      if (!body.readableEnded) fail(invalid('the connection closed before the upload was complete'));
    });
    body.pipe(parser as unknown as NodeJS.WritableStream);
  });
}

function acceptEntry(
  entry: ReadEntry,
  root: string,
  expected: Map<string, ManifestEntry>,
  received: Set<string>,
  limits: UploadLimits,
  signal: AbortSignal,
): Promise<void> {
  const path = entry.path.replace(/\/$/, '');
  const problem = pathProblem(path, limits.maxDepth, limits.maxPathLength);
  if (problem) throw invalid(`entry '${path.slice(0, 200)}': ${problem}`);
  if (entry.type === 'Directory') {
    entry.resume();
    return mkdir(join(root, path), { recursive: true, mode: 0o755 }).then(() => undefined);
  }
  if (!FILE_TYPES.has(entry.type)) throw invalid(`entry '${path}' is a ${entry.type}: only files and folders are accepted`);
  const want = expected.get(path);
  if (!want) throw invalid(`entry '${path}' is not in the manifest`);
  if (received.has(path)) throw invalid(`entry '${path}' appears twice`);
  if (entry.size !== want.size) throw invalid(`entry '${path}' is ${entry.size} bytes, the manifest says ${want.size}`);
  received.add(path);
  return writeVerified(entry, join(root, path), want, signal);
}

async function writeVerified(entry: ReadEntry, file: string, want: ManifestEntry, signal: AbortSignal): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  if (signal.aborted) throw invalid('aborted');
  const hash = createHash('sha256');
  const out = createWriteStream(file, { flags: 'wx', mode: want.mode & 0o111 ? EXEC_MODE : PLAIN_MODE });
  await new Promise<void>((resolve, reject) => {
    entry.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      if (!out.write(chunk)) {
        entry.pause();
        out.once('drain', () => entry.resume());
      }
    });
    entry.on('end', () => out.end());
    entry.on('error', reject);
    out.on('error', reject);
    out.on('finish', resolve);
    signal.addEventListener('abort', () => {
      out.destroy();
      reject(invalid('aborted'));
    });
  });
  const digest = hash.digest('hex');
  if (digest !== want.sha256) throw invalid(`'${want.path}' arrived with sha256 ${digest.slice(0, 12)}…, the manifest says ${want.sha256.slice(0, 12)}…`);
}
