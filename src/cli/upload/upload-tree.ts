import { EXIT } from '../../protocol/errors.js';
import type { ManifestEntry, UploadPurpose } from '../../protocol/types.js';
import type { FileSent } from '../../pack/tar-stream.js';
import type { IncludedFile } from '../../pack/scan.js';
import type { Api, Context } from '../context.js';
import { CliError, SilentExit } from '../errors.js';

export interface UploadTreeOptions {
  root: string;
  files: IncludedFile[];
  purpose: UploadPurpose;
  onStart?: (manifest: ManifestEntry[]) => void;
  onFileSent?: (e: FileSent) => void;
}

export interface UploadHandle {
  id: string;
  /** Ctrl-C after this point: drops the upload, and stops a session already started from it. */
  cancel(): Promise<void>;
  release(): void;
}

/**
 * Hashes the files, announces the manifest, streams them as one gzipped tar, and keeps a Ctrl-C
 * handler that cancels the upload on the server until the caller releases it.
 */
export async function uploadTree(ctx: Context, api: Api, opts: UploadTreeOptions): Promise<UploadHandle> {
  const [{ buildManifest }, { packStream }] = await Promise.all([
    import('../../pack/manifest.js'),
    import('../../pack/tar-stream.js'),
  ]);
  let manifest: ManifestEntry[];
  try {
    manifest = await buildManifest(opts.root, opts.files);
  } catch (err) {
    throw new CliError(`cannot read the project (${(err as Error).message}): fix the file or add it to .nsmlignore`);
  }
  const upload = await api.calls.createUpload({ purpose: opts.purpose, files: manifest });
  const controller = new AbortController();
  let cancelling: Promise<void> | undefined;
  const cancel = () =>
    (cancelling ??= (async () => {
      controller.abort();
      await api.calls.cancelUpload(upload.id).catch(() => {});
      ctx.io.err('\ncancelled: the upload was dropped on the server and no session was left behind\n');
    })());
  const release = ctx.onInterrupt(cancel);
  try {
    opts.onStart?.(manifest);
    await api.calls.sendUpload(upload.id, packStream(opts.root, manifest, (e) => opts.onFileSent?.(e)), controller.signal);
  } catch (err) {
    release();
    if (cancelling) {
      await cancelling;
      throw new SilentExit(EXIT.interrupted);
    }
    await api.calls.cancelUpload(upload.id).catch(() => {});
    throw err;
  }
  return { id: upload.id, cancel, release };
}
