import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { KhdError } from '../../protocol/errors.js';
import { pathProblem, USTAR_MAX_SIZE } from '../../protocol/paths.js';
import { formatSize } from '../../protocol/sizes.js';
import type { UploadEntry, UploadLimits } from '../../protocol/types.js';
import { type EntryReceiver, type TarEntry, TarReader } from './tar-reader.js';

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
 * Reads a tar (plain or gzipped, as `gzip` says) of file contents, strictly (TarReader): only
 * regular files (and folders), each named by one of the `wanted` paths and carrying exactly its
 * size and sha256 (an entry sent without a hash: its size, and its hash is computed here). The
 * body and what it inflates to are counted as they stream, against what the wanted contents
 * could take. Each content is committed as soon as it is verified, so an upload cut off midway
 * keeps what arrived whole and the next run sends only the rest. Whether everything needed
 * arrived is the caller's check; nothing is laid out here.
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
  /** Large contents being written: stopped on a failure, unless they arrived whole. */
  const writing = new Set<LargeContent>();
  const window = new WriteWindow();
  let entries = 0;
  let failure: unknown;

  return new Promise<void>((resolve, reject) => {
    const tarMax = tarBudget(wanted.values());
    const stages: Transform[] = [new ByteCap(gzip ? bodyBudget(tarMax) : tarMax, (n) => `the body is over ${formatSize(n)}, more than its files could take`)];
    if (gzip) stages.push(createGunzip(), new ByteCap(tarMax, (n) => `the body inflates to over ${formatSize(n)}, more than its files could take`));
    // On the first problem: stop parsing, stop the writes in flight, and only then reject, so
    // no temporary file is written after the caller has been told. The rest of the body is
    // read and dropped (not destroyed), so the refusal can still be answered.
    const fail = (err: unknown) => {
      if (failure !== undefined) return;
      failure = err instanceof KhdError ? err : invalid(err instanceof Error ? err.message : String(err));
      body.unpipe();
      body.resume();
      for (const stage of stages) stage.destroy();
      parse.destroy();
      for (const large of writing) large.stop();
      void Promise.allSettled(jobs).then(() => reject(failure));
    };
    const reader = new TarReader((entry) => {
      entries += 1;
      if (entries > limits.maxFiles * 2 + 16) throw invalid(`more than ${limits.maxFiles} entries`);
      const want = acceptEntry(entry, wanted, received, limits);
      if (!want) return SKIP;
      if (want.size > SMALL_CONTENT) {
        const large = new LargeContent(want, sink, () => writing.delete(large));
        writing.add(large);
        jobs.push(large.done.catch(fail));
        return large;
      }
      const small = () => new SmallContent(want, sink, window, (job) => jobs.push(job.catch(fail)));
      const entering = window.enter(want.size);
      return entering ? entering.then(small) : small();
    });
    const parse = new Writable({
      // A chunk at a time, parsed as it comes; the next waits while a write holds the reader back.
      write(chunk: Buffer, _encoding, done) {
        if (failure !== undefined) return done();
        try {
          const waiting = reader.feed(chunk);
          if (waiting) waiting.then(() => done(), (err: unknown) => done(err as Error));
          else done();
        } catch (err) {
          done(err as Error);
        }
      },
      final(done) {
        try {
          reader.finish();
          done();
        } catch (err) {
          done(err as Error);
        }
      },
    });
    parse.on('error', fail);
    parse.on('finish', () => {
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
    tar.pipe(parse);
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

/** A folder's entry: nothing to keep. */
const SKIP: EntryReceiver = { data: () => undefined, end: () => undefined };

/** The manifest entry a tar entry carries the content of; none for a folder. Throws for anything refused. */
function acceptEntry(entry: TarEntry, wanted: Map<string, UploadEntry>, received: Set<string>, limits: UploadLimits): UploadEntry | undefined {
  const path = entry.path.replace(/\/$/, '');
  const problem = pathProblem(path, limits.maxDepth, limits.maxPathLength);
  if (problem) throw invalid(`entry '${path.slice(0, 200)}': ${problem}`);
  if (entry.type === 'Directory') return undefined;
  if (!FILE_TYPES.has(entry.type)) throw invalid(`entry '${path}' is a ${entry.type}: only files and folders are accepted`);
  const want = wanted.get(path);
  if (!want) throw invalid(`entry '${path}' is not in the manifest, or its content was not asked for`);
  if (received.has(path)) throw invalid(`entry '${path}' appears twice`);
  if (entry.paxSize !== undefined && entry.paxSize <= USTAR_MAX_SIZE) {
    throw invalid(`entry '${path}' has a size in a PAX header as well as in its ustar header: an entry may have one size`);
  }
  if (entry.size !== want.size) throw invalid(`entry '${path}' is ${entry.size} bytes, the manifest says ${want.size}`);
  received.add(path);
  return want;
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

  /** Takes a place for `size` bytes: at once (undefined), or once one is free (a promise). */
  enter(size: number): Promise<void> | undefined {
    if (this.full(size)) return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => this.enter(size));
    this.bytes += size;
    this.files += 1;
    return undefined;
  }

  leave(size: number): void {
    this.bytes -= size;
    this.files -= 1;
    this.waiting.shift()?.();
  }

  private full(size: number): boolean {
    return this.files >= WINDOW_FILES || (this.bytes > 0 && this.bytes + size > WINDOW_BYTES);
  }
}

/** The content's hash is the manifest's; an entry sent without one takes what arrived. */
function checkDigest(want: UploadEntry, digest: string): void {
  if (want.sha256 !== undefined && digest !== want.sha256) {
    throw invalid(`'${want.path}' arrived with sha256 ${digest.slice(0, 12)}…, the manifest says ${want.sha256.slice(0, 12)}…`);
  }
}

/**
 * A small content: its pieces are kept (views of the parser's chunks, not copied: the writer
 * copies them once, into its batch) and hashed as they come; verified at its end, then written
 * while the parser goes on to the next entry. Its place in the window is held until then.
 */
class SmallContent implements EntryReceiver {
  private readonly hash = createHash('sha256');
  private readonly pieces: Buffer[] = [];
  private bytes = 0;

  constructor(
    private readonly want: UploadEntry,
    private readonly sink: BlobSink,
    private readonly window: WriteWindow,
    private readonly job: (p: Promise<void>) => void,
  ) {}

  data(piece: Buffer): undefined {
    this.hash.update(piece);
    this.pieces.push(piece);
    this.bytes += piece.length;
    return undefined;
  }

  end(): void {
    const data = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.bytes);
    const digest = this.hash.digest('hex');
    const storing = (async () => {
      checkDigest(this.want, digest);
      await this.sink.store(data, digest, this.want);
    })();
    this.job(storing.finally(() => this.window.leave(this.want.size)));
  }
}

/** A large content: streamed to a temporary file as it arrives (the parser waits for the disk), verified, then committed. */
class LargeContent implements EntryReceiver {
  readonly done: Promise<void>;
  private readonly hash = createHash('sha256');
  private readonly tmp: string;
  private readonly out: WriteStream;
  private whole = false;
  private settle!: { resolve: () => void; reject: (err: unknown) => void };

  constructor(
    private readonly want: UploadEntry,
    private readonly sink: BlobSink,
    private readonly forget: () => void,
  ) {
    this.tmp = sink.tmpFile();
    // A deep write queue: the parser goes on reading while earlier chunks reach the disk.
    this.out = createWriteStream(this.tmp, { flags: 'wx', mode: CONTENT_MODE, highWaterMark: LARGE_WRITE_QUEUE });
    const written = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
      this.out.on('error', reject);
      this.out.on('finish', resolve);
    });
    this.done = written
      .then(async () => {
        const digest = this.hash.digest('hex');
        checkDigest(this.want, digest);
        await this.sink.commit(this.tmp, digest, this.want.size, this.want);
      })
      .catch(async (err: unknown) => {
        await rm(this.tmp, { force: true });
        throw err;
      })
      .finally(() => this.forget());
  }

  data(piece: Buffer): Promise<void> | undefined {
    this.hash.update(piece);
    if (this.out.write(piece)) return undefined;
    // Drained, or stopped (a failure elsewhere: nothing more is read then anyway).
    return new Promise<void>((resolve) => {
      const go = () => {
        this.out.off('drain', go).off('close', go);
        resolve();
      };
      this.out.on('drain', go).on('close', go);
    });
  }

  end(): void {
    this.whole = true;
    this.out.end();
  }

  /** Another entry failed: a content that arrived whole is still verified and kept; one cut short is dropped. */
  stop(): void {
    if (this.whole) return;
    this.out.destroy();
    this.settle.reject(invalid('aborted'));
  }
}
