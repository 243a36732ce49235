import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm } from 'node:fs/promises';
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

/** Where verified contents go: a temporary file first, then committed under their hash. */
export interface BlobSink {
  tmpFile(): string;
  commit(tmp: string, sha256: string, size: number): Promise<void>;
}

/**
 * Reads a gzipped tar of file contents, strictly: only regular files (and folders, ignored),
 * each named by one of the `wanted` paths and carrying exactly its size and sha256. Each content
 * is committed as soon as it is verified, so an upload cut off midway keeps what arrived whole
 * and the next run sends only the rest. Whether everything needed arrived is the caller's
 * check; nothing is laid out here.
 */
export function receiveContents(
  body: Readable,
  wanted: Map<string, ManifestEntry>,
  sink: BlobSink,
  limits: UploadLimits,
): Promise<void> {
  const received = new Set<string>();
  const jobs: Promise<void>[] = [];
  const abort = new AbortController();
  let entries = 0;
  let failure: unknown;

  return new Promise<void>((resolve, reject) => {
    // On the first problem: stop reading, abort the writes in flight, and only then reject,
    // so no temporary file is written after the caller has been told.
    const fail = (err: unknown) => {
      if (failure !== undefined) return;
      failure = err instanceof KhdError ? err : invalid(err instanceof Error ? err.message : String(err));
      body.unpipe();
      body.destroy();
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
          jobs.push(acceptEntry(entry, wanted, received, sink, limits, abort.signal).catch(fail));
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
        if (failure === undefined) resolve();
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
  wanted: Map<string, ManifestEntry>,
  received: Set<string>,
  sink: BlobSink,
  limits: UploadLimits,
  signal: AbortSignal,
): Promise<void> {
  const path = entry.path.replace(/\/$/, '');
  const problem = pathProblem(path, limits.maxDepth, limits.maxPathLength);
  if (problem) throw invalid(`entry '${path.slice(0, 200)}': ${problem}`);
  if (entry.type === 'Directory') {
    entry.resume();
    return Promise.resolve();
  }
  if (!FILE_TYPES.has(entry.type)) throw invalid(`entry '${path}' is a ${entry.type}: only files and folders are accepted`);
  const want = wanted.get(path);
  if (!want) throw invalid(`entry '${path}' is not in the manifest, or its content was not asked for`);
  if (received.has(path)) throw invalid(`entry '${path}' appears twice`);
  if (entry.size !== want.size) throw invalid(`entry '${path}' is ${entry.size} bytes, the manifest says ${want.size}`);
  received.add(path);
  return receiveOne(entry, want, sink, signal);
}

async function receiveOne(entry: ReadEntry, want: ManifestEntry, sink: BlobSink, signal: AbortSignal): Promise<void> {
  const tmp = sink.tmpFile();
  const hash = createHash('sha256');
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
  try {
    await new Promise<void>((resolve, reject) => {
      entry.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        if (!out.write(chunk)) {
          entry.pause();
          out.once('drain', () => entry.resume());
        }
      });
      let whole = false;
      entry.on('end', () => {
        whole = true;
        out.end();
      });
      entry.on('error', reject);
      out.on('error', reject);
      out.on('finish', resolve);
      // A content that arrived whole is still verified and kept when a later one fails.
      signal.addEventListener('abort', () => {
        if (whole) return;
        out.destroy();
        reject(invalid('aborted'));
      });
    });
    const digest = hash.digest('hex');
    if (digest !== want.sha256) {
      throw invalid(`'${want.path}' arrived with sha256 ${digest.slice(0, 12)}…, the manifest says ${want.sha256.slice(0, 12)}…`);
    }
    await sink.commit(tmp, digest, want.size);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Lays the manifest's files out from the stored contents into `dest`: in a hidden sibling
 * folder first, renamed into place only when complete, so nothing half-laid-out is ever run.
 */
export async function layOut(dest: string, manifest: ManifestEntry[], contentPath: (sha256: string) => string): Promise<void> {
  const staging = join(dirname(dest), `.partial-${randomBytes(6).toString('hex')}`);
  await mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    for (const f of manifest) {
      const file = join(staging, f.path);
      await mkdir(dirname(file), { recursive: true, mode: 0o755 });
      await copyFile(contentPath(f.sha256), file);
      await chmod(file, f.mode & 0o111 ? EXEC_MODE : PLAIN_MODE);
    }
    await chmod(staging, 0o755);
    await rename(staging, dest);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}
