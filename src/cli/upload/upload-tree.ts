import { join } from 'node:path';
import { EXIT } from '../../protocol/errors.js';
import type { ManifestEntry, UploadEntry, UploadInfo, UploadPurpose } from '../../protocol/types.js';
import type { HashCache } from '../../pack/hash-cache.js';
import type { FileHashed } from '../../pack/tar-stream.js';
import type { IncludedFile } from '../../pack/scan.js';
import { withRetries } from '../../protocol/retry.js';
import { transient } from '../api/failures.js';
import type { Api, Context } from '../context.js';
import { CliError, SilentExit } from '../errors.js';
import type { UploadProgress } from '../render/upload-progress.js';

/** Retries of an upload after its first try (docs/uploads.md): 0.5 s, 1 s, 2 s, 4 s, 8 s. */
export const UPLOAD_RETRIES = 5;
export const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 8_000;

export interface UploadTreeOptions {
  root: string;
  files: IncludedFile[];
  purpose: UploadPurpose;
  progress: UploadProgress;
}

export interface UploadHandle {
  id: string;
  /** Ctrl-C after this point: drops the upload, and stops a session already started from it. */
  cancel(): Promise<void>;
  release(): void;
}

/** Times the server may ask for hashes before everything left is hashed (it asks again only when the user's contents changed meanwhile). */
const HASH_FIRST_ASKS = 2;

/**
 * The files' hashes come from the hash cache; a project's tree the server already laid out for
 * this user is named by its key alone; otherwise the manifest goes, and only the contents the
 * server lacks are streamed. A file the cache does not know is sent without a hash, hashed as
 * it is read, in one pass, unless the server says one of this user's contents has its size
 * (then it may be on the server: it is hashed first). The server hashes what arrives too, and
 * the two must agree. A transient failure is retried with back-off; each retry asks the server
 * again, so what already arrived is never sent twice. Ctrl-C cancels the upload on the server.
 */
export async function uploadTree(ctx: Context, api: Api, opts: UploadTreeOptions): Promise<UploadHandle> {
  const [{ entriesFromCache, hashEntries, ReadCache }, { HashCache }] = await Promise.all([
    import('../../pack/manifest.js'),
    import('../../pack/hash-cache.js'),
  ]);
  // The tar writer (and node-tar) load only when something is to be sent.
  let changedClass: typeof import('../../pack/tar-stream.js').FileChangedError | undefined;
  // Racily clean files are told by the context's clock.
  const nowNs = () => BigInt(ctx.clock()) * 1_000_000n;
  const cache = new HashCache(join(ctx.config.dir, 'hash-cache.json'), opts.root, nowNs);
  const kept = new ReadCache(undefined, nowNs);
  const entries = entriesFromCache(opts.files, cache, kept);
  const hash = async (only?: Set<string>) => {
    try {
      await hashEntries(opts.root, opts.files, entries, cache, (p) => opts.progress.hashing(p.cached + p.hashed, opts.files.length), kept, only);
    } catch (err) {
      throw new CliError(`cannot read the project (${(err as Error).message}): fix the file or add it to .nsmlignore`);
    }
  };

  let current: string | undefined;
  const controller = new AbortController();
  let cancelling: Promise<void> | undefined;
  const cancel = () =>
    (cancelling ??= (async () => {
      controller.abort();
      if (current) await api.calls.cancelUpload(current).catch(() => {});
      ctx.io.err('\ncancelled: the upload was dropped on the server and no session was left behind\n');
    })());
  const release = ctx.onInterrupt(cancel);
  let packError: Error | undefined;

  const bytes = entries.reduce((s, m) => s + m.size, 0);
  /** The upload of the manifest as it now stands: a reused one, or a new one with what to send. */
  const create = async (): Promise<UploadInfo> => {
    for (let asked = 0; ; asked++) {
      const unhashed = entries.filter((e) => e.sha256 === undefined);
      // An unchanged project (or a fresh clone of one run before) is named by its tree's key alone.
      if (unhashed.length === 0 && opts.purpose === 'session') {
        const tree = (await import('../../protocol/tree-key.js')).treeKey(entries as ManifestEntry[]);
        const reused = await api.calls.reuseUpload(tree).catch((err: unknown) => {
          // 404: not here (or a server from before the fast path): the manifest goes instead.
          if ((err as { status?: number }).status === 404) return undefined;
          throw err;
        });
        if (reused) return reused;
      }
      const answer = await api.calls.createUpload({ purpose: opts.purpose, files: entries });
      if (!('hashFirst' in answer)) return answer;
      await hash(asked < HASH_FIRST_ASKS ? new Set(answer.hashFirst) : undefined);
    }
  };
  const attempt = async (n: number): Promise<UploadHandle> => {
    const upload = await create();
    current = upload.id;
    // Ctrl-C while the manifest was on its way: this upload too is dropped.
    if (controller.signal.aborted) await api.calls.cancelUpload(upload.id).catch(() => {});
    // The entries as they are now: those hashed first since are sent by their hash (and from memory).
    const byPath = new Map(entries.map((m) => [m.path, m]));
    const send = upload.send.map((p) => byPath.get(p)!);
    if (n === 1) {
      opts.progress.plan({ files: entries.length, bytes, sendFiles: send.length, sendBytes: send.reduce((s, m) => s + m.size, 0) });
    }
    if (send.length > 0) {
      const { packStream, FileChangedError } = await import('../../pack/tar-stream.js');
      changedClass = FileChangedError;
      const hashedHere = new Map<string, FileHashed>();
      const unhashed = entries.flatMap((e, i) => (e.sha256 === undefined ? [i] : []));
      const body = await packStream(opts.root, send, (e) => opts.progress.fileSent(e), kept, (e) => opts.progress.fileProgress(e), (e) => hashedHere.set(e.path, e));
      body.stream.on('error', (err) => (packError = err));
      const done = await api.calls.sendUpload(upload.id, body.stream, body.contentType, controller.signal);
      if (unhashed.length > 0) takeHashes(entries, unhashed, done.hashes, hashedHere, cache);
    }
    opts.progress.uploaded();
    return { id: upload.id, cancel, release };
  };
  // A file that changed under us is not a network problem: retrying would send it again.
  const changed = () => (changedClass && packError instanceof changedClass ? packError : undefined);
  try {
    // Each retry asks the server again what it lacks: what already arrived is not sent twice.
    return await withRetries(attempt, {
      retries: UPLOAD_RETRIES, baseMs: RETRY_BASE_MS, maxMs: RETRY_MAX_MS, sleep: ctx.sleep,
      retryable: (err) => !cancelling && !changed() && transient(err),
      asksFor: (err) => (err as { retryAfterMs?: number }).retryAfterMs,
      onRetry: (n, delay, err) => opts.progress.retry(n, delay, (err as Error).message),
    });
  } catch (err) {
    if (cancelling) {
      await cancelling;
      throw new SilentExit(EXIT.interrupted);
    }
    release();
    if (current) await api.calls.cancelUpload(current).catch(() => {});
    const fileChanged = changed();
    if (fileChanged) throw new CliError(fileChanged.message);
    throw err;
  } finally {
    // What was hashed, here or by the server, is kept for the next run, whatever this one became.
    await cache.save().catch(() => {});
  }
}

/**
 * The server's hash of each entry sent without one (`hashes`, in the manifest's order) checked
 * against the one made here as it was read: they differ only when the bytes changed on the
 * way. Agreed hashes go into the manifest and, with the stamp the file was read at, the cache.
 */
function takeHashes(entries: UploadEntry[], unhashed: number[], hashes: string[] | undefined, here: Map<string, FileHashed>, cache: HashCache): void {
  if (hashes?.length !== unhashed.length) throw new CliError('the server did not return the hashes of the files sent without one: is it an older khd? Upgrade it, or run again');
  unhashed.forEach((i, k) => {
    const entry = entries[i]!;
    const mine = here.get(entry.path);
    if (!mine || mine.sha256 !== hashes[k]) {
      throw new CliError(`${entry.path} arrived different on the server (sha256 ${hashes[k]!.slice(0, 12)}…, sent ${mine?.sha256.slice(0, 12) ?? 'nothing'}…): the connection changed it; run again`);
    }
    entry.sha256 = mine.sha256;
    cache.set(entry.path, mine.stamp, mine.sha256);
  });
}
