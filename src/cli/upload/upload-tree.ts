import { join } from 'node:path';
import { EXIT } from '../../protocol/errors.js';
import type { ManifestEntry, UploadPurpose } from '../../protocol/types.js';
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

/**
 * Hashes the files (through the hash cache); a project's tree the server already laid out for
 * this user is named by its key alone; otherwise sends the manifest, and streams only the contents
 * the server lacks. A transient failure is retried with back-off; each retry asks the server
 * again, so what already arrived is never sent twice. Ctrl-C cancels the upload on the server.
 */
export async function uploadTree(ctx: Context, api: Api, opts: UploadTreeOptions): Promise<UploadHandle> {
  const [{ buildManifest, ReadCache }, { HashCache }] = await Promise.all([
    import('../../pack/manifest.js'),
    import('../../pack/hash-cache.js'),
  ]);
  // The tar writer (and node-tar) load only when something is to be sent.
  let changedClass: typeof import('../../pack/tar-stream.js').FileChangedError | undefined;
  const cache = new HashCache(join(ctx.config.dir, 'hash-cache.json'), opts.root);
  const kept = new ReadCache();
  let manifest: ManifestEntry[];
  try {
    manifest = await buildManifest(opts.root, opts.files, cache, (p) => opts.progress.hashing(p.cached + p.hashed, opts.files.length), kept);
  } catch (err) {
    throw new CliError(`cannot read the project (${(err as Error).message}): fix the file or add it to .nsmlignore`);
  }
  await cache.save().catch(() => {});

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
  const byPath = new Map(manifest.map((m) => [m.path, m]));
  let packError: Error | undefined;

  const bytes = manifest.reduce((s, m) => s + m.size, 0);
  // An unchanged project (or a fresh clone of one run before) is named by its tree's key alone.
  const tree = opts.purpose === 'session' ? (await import('../../protocol/tree-key.js')).treeKey(manifest) : undefined;
  const attempt = async (n: number): Promise<UploadHandle> => {
    if (tree) {
      const reused = await api.calls.reuseUpload(tree).catch((err: unknown) => {
        // 404: not here (or a server from before the fast path): the manifest goes instead.
        if ((err as { status?: number }).status === 404) return undefined;
        throw err;
      });
      if (reused) {
        current = reused.id;
        if (controller.signal.aborted) await api.calls.cancelUpload(reused.id).catch(() => {});
        if (n === 1) opts.progress.plan({ files: manifest.length, bytes, sendFiles: 0, sendBytes: 0 });
        opts.progress.uploaded();
        return { id: reused.id, cancel, release };
      }
    }
    const upload = await api.calls.createUpload({ purpose: opts.purpose, files: manifest });
    current = upload.id;
    // Ctrl-C while the manifest was on its way: this upload too is dropped.
    if (controller.signal.aborted) await api.calls.cancelUpload(upload.id).catch(() => {});
    const send = upload.send.map((p) => byPath.get(p)!);
    if (n === 1) {
      opts.progress.plan({ files: manifest.length, bytes, sendFiles: send.length, sendBytes: send.reduce((s, m) => s + m.size, 0) });
    }
    if (send.length > 0) {
      const { packStream, FileChangedError } = await import('../../pack/tar-stream.js');
      changedClass = FileChangedError;
      const body = await packStream(opts.root, send, (e) => opts.progress.fileSent(e), kept, (e) => opts.progress.fileProgress(e));
      body.stream.on('error', (err) => (packError = err));
      await api.calls.sendUpload(upload.id, body.stream, body.contentType, controller.signal);
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
  }
}
