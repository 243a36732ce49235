import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { KhdError } from '../../protocol/errors.js';
import { pathProblem, USTAR_MAX_SIZE } from '../../protocol/paths.js';
import { formatSize } from '../../protocol/sizes.js';
import type { UploadEntry, UploadLimits } from '../../protocol/types.js';

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
/** Stored contents are 0644, so a tree can link them as ordinary files. */
export const CONTENT_MODE = 0o644;

function invalid(message: string): KhdError {
  return new KhdError('KHD_UPLOAD_INVALID', `upload refused: ${message}`);
}

/**
 * The most bytes a tar of these contents can take: each content rounded up to tar's 512-byte
 * blocks, 2 KiB of headers per file (a PAX header for a long path included), and 1 MiB for the
 * end blocks, record padding and folder entries. What inflates past it is a bomb, not an upload.
 */
export function tarBudget(files: Iterable<Pick<UploadEntry, 'size'>>): number {
  let total = 1024 * 1024;
  for (const f of files) total += Math.ceil(f.size / 512) * 512 + 2048;
  return total;
}

/** The most bytes the body of a tar of this size can take, gzipped (deflate adds at most ~0.03 %). */
export function bodyBudget(tarBytes: number): number {
  return tarBytes + Math.ceil(tarBytes / 1024) + 1024;
}

/**
 * Where verified contents go: a temporary file first, then committed under their hash. `entry`
 * is the manifest entry the content arrived for (one sent without a hash gets `sha256` here).
 */
export interface BlobSink {
  tmpFile(): string;
  commit(tmp: string, sha256: string, size: number, entry: UploadEntry): Promise<void>;
  /** A small content, verified in memory; `data` may be a view of the parser's buffer, to be copied before the first await. */
  store(data: Buffer, sha256: string, entry: UploadEntry): Promise<void>;
}

/**
 * Reads a tar (plain or gzipped, as `gzip` says) of file contents, strictly: only regular files
 * (and folders), each named by one of the `wanted` paths and carrying exactly its size and
 * sha256 (an entry sent without a hash: its size, and its hash is computed here). The body and what it inflates to are counted as they stream, against what the wanted
 * contents could take. Each content is committed as soon as it is verified, so an upload cut off
 * midway keeps what arrived whole and the next run sends only the rest. Whether everything
 * needed arrived is the caller's check; nothing is laid out here.
 */
export function receiveContents(
  body: Readable,
  gzip: boolean,
  wanted: Map<string, UploadEntry>,
  sink: BlobSink,
  limits: UploadLimits,
): Promise<void> {
  const received = new Set<string>();
  const jobs: Promise<void>[] = [];
  const abort = new AbortController();
  const window = new WriteWindow();
  let entries = 0;
  let failure: unknown;

  return new Promise<void>((resolve, reject) => {
    const tarMax = tarBudget(wanted.values());
    const stages: Transform[] = [new ByteCap(gzip ? bodyBudget(tarMax) : tarMax, (n) => `the body is over ${formatSize(n)}, more than its files could take`)];
    if (gzip) stages.push(createGunzip(), new ByteCap(tarMax, (n) => `the body inflates to over ${formatSize(n)}, more than its files could take`));
    // On the first problem: stop parsing, abort the writes in flight, and only then reject, so
    // no temporary file is written after the caller has been told. The rest of the body is
    // read and dropped (not destroyed), so the refusal can still be answered.
    const fail = (err: unknown) => {
      if (failure !== undefined) return;
      failure = err instanceof KhdError ? err : invalid(err instanceof Error ? err.message : String(err));
      body.unpipe();
      body.resume();
      for (const stage of stages) stage.destroy();
      abort.abort();
      void Promise.allSettled(jobs).then(() => reject(failure));
    };
    const parser = new Parser({
      strict: true,
      noResume: true,
      // The tar arrives inflated already (and counted, below). The parser would still inflate a
      // second gzip layer it finds inside: it may not grow, so the count stays a bound.
      maxDecompressionRatio: 1,
      brotli: false,
      zstd: false,
      onReadEntry: (entry: ReadEntry) => {
        if (failure !== undefined) return entry.resume();
        try {
          entries += 1;
          if (entries > limits.maxFiles * 2 + 16) throw invalid(`more than ${limits.maxFiles} entries`);
          jobs.push(acceptEntry(entry, wanted, received, sink, limits, abort.signal, window).catch(fail));
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
    let tar: Readable = body;
    for (const stage of stages) {
      stage.on('error', (err: Error) => fail(err instanceof KhdError ? err : invalid(`the body is not valid gzip (${err.message})`)));
      tar = tar.pipe(stage);
    }
    tar.pipe(parser as unknown as NodeJS.WritableStream);
  });
}

/** Passes bytes through until more than `max` have come, then fails the stream. */
class ByteCap extends Transform {
  private seen = 0;

  constructor(
    private readonly max: number,
    private readonly message: (max: number) => string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) done(new KhdError('KHD_PAYLOAD_TOO_LARGE', `upload refused: ${this.message(this.max)}`));
    else done(null, chunk);
  }
}

function acceptEntry(
  entry: ReadEntry,
  wanted: Map<string, UploadEntry>,
  received: Set<string>,
  sink: BlobSink,
  limits: UploadLimits,
  signal: AbortSignal,
  window: WriteWindow,
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
  const paxSize = (entry.extended as { size?: number } | undefined)?.size;
  if (paxSize !== undefined && paxSize <= USTAR_MAX_SIZE) {
    throw invalid(`entry '${path}' has a size in a PAX header as well as in its ustar header: an entry may have one size`);
  }
  if (entry.size !== want.size) throw invalid(`entry '${path}' is ${entry.size} bytes, the manifest says ${want.size}`);
  received.add(path);
  return receiveOne(entry, want, sink, signal, window);
}

/** Contents up to this size are read into memory and written while the next ones arrive. */
const SMALL_CONTENT = 1024 * 1024;
const WINDOW_BYTES = 64 * 1024 * 1024;
const WINDOW_FILES = 256;
const LARGE_WRITE_QUEUE = 8 * 1024 * 1024;

/**
 * Bounds the small contents held in memory while they are written: when full, the next entry
 * waits unread, so the parser (and the socket behind it) waits too.
 */
class WriteWindow {
  private bytes = 0;
  private files = 0;
  private readonly waiting: (() => void)[] = [];

  async enter(size: number): Promise<void> {
    while (this.files >= WINDOW_FILES || (this.bytes > 0 && this.bytes + size > WINDOW_BYTES)) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.bytes += size;
    this.files += 1;
  }

  leave(size: number): void {
    this.bytes -= size;
    this.files -= 1;
    this.waiting.shift()?.();
  }
}

function receiveOne(entry: ReadEntry, want: UploadEntry, sink: BlobSink, signal: AbortSignal, window: WriteWindow): Promise<void> {
  return want.size <= SMALL_CONTENT ? receiveSmall(entry, want, sink, signal, window) : receiveLarge(entry, want, sink, signal);
}

/** Listens for the abort only while the entry is being read, so listeners do not pile up. */
function onAbort(signal: AbortSignal, entry: ReadEntry, listener: () => void): void {
  signal.addEventListener('abort', listener, { once: true });
  entry.once('end', () => signal.removeEventListener('abort', listener));
  entry.once('error', () => signal.removeEventListener('abort', listener));
}

/** The content's hash is the manifest's; an entry sent without one takes what arrived. */
function checkDigest(want: UploadEntry, digest: string): void {
  if (want.sha256 !== undefined && digest !== want.sha256) {
    throw invalid(`'${want.path}' arrived with sha256 ${digest.slice(0, 12)}…, the manifest says ${want.sha256.slice(0, 12)}…`);
  }
}

/** Read whole, verified in memory, then written while the parser goes on to the next entry. */
async function receiveSmall(entry: ReadEntry, want: UploadEntry, sink: BlobSink, signal: AbortSignal, window: WriteWindow): Promise<void> {
  await window.enter(want.size);
  try {
    if (signal.aborted) {
      entry.resume();
      throw invalid('aborted');
    }
    const hash = createHash('sha256');
    // The parser's own pieces, not copied: the writer copies them once, into its batch.
    const chunks: Buffer[] = [];
    let at = 0;
    await new Promise<void>((resolve, reject) => {
      let whole = false;
      entry.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        at += chunk.length;
        if (at > want.size) return reject(invalid(`'${want.path}' is longer than ${want.size} bytes`));
        chunks.push(chunk);
      });
      entry.on('end', () => {
        whole = true;
        if (at === want.size) resolve();
        else reject(invalid(`'${want.path}' ended after ${at} of its ${want.size} bytes`));
      });
      entry.on('error', reject);
      onAbort(signal, entry, () => whole || reject(invalid('aborted')));
    });
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, at);
    const digest = hash.digest('hex');
    checkDigest(want, digest);
    await sink.store(data, digest, want);
  } finally {
    window.leave(want.size);
  }
}

/** Streamed to a temporary file as it arrives; the parser waits for the disk. */
async function receiveLarge(entry: ReadEntry, want: UploadEntry, sink: BlobSink, signal: AbortSignal): Promise<void> {
  const tmp = sink.tmpFile();
  const hash = createHash('sha256');
  // A deep write queue: the parser goes on reading while earlier chunks reach the disk.
  const out = createWriteStream(tmp, { flags: 'wx', mode: CONTENT_MODE, highWaterMark: LARGE_WRITE_QUEUE });
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
      onAbort(signal, entry, () => {
        if (whole) return;
        out.destroy();
        reject(invalid('aborted'));
      });
    });
    const digest = hash.digest('hex');
    checkDigest(want, digest);
    await sink.commit(tmp, digest, want.size, want);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
