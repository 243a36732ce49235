import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { KhdError } from '../../protocol/errors.js';
import { pathProblem } from '../../protocol/paths.js';
import type { CreateUploadRequest, UploadInfo } from '../../protocol/types.js';
import { UPLOAD_LIMITS } from '../config.js';
import type { DataDir } from '../data-dir.js';
import type { SessionService } from '../sessions/session-service.js';
import type { UserRow } from '../store/accounts.js';
import type { SessionStore } from '../store/sessions.js';
import type { UploadRow, UploadStore } from '../store/uploads.js';
import { extractUpload } from './extract.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Uploads: a manifest first, then the files as one gzipped tar checked against it. */
export class UploadService {
  constructor(
    private readonly uploads: UploadStore,
    private readonly sessions: SessionStore,
    private readonly sessionService: SessionService,
    private readonly dataDir: DataDir,
  ) {}

  create(user: UserRow, req: CreateUploadRequest): UploadInfo {
    if (req.purpose === 'dataset' && !user.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can push datasets');
    const limits = UPLOAD_LIMITS[req.purpose];
    if (req.files.length === 0) throw new KhdError('KHD_UPLOAD_INVALID', 'the upload holds no files');
    if (req.files.length > limits.maxFiles) {
      throw new KhdError('KHD_PAYLOAD_TOO_LARGE', `the upload has ${req.files.length} files; the limit is ${limits.maxFiles}: list what to leave out in .nsmlignore`);
    }
    const seen = new Set<string>();
    let total = 0;
    for (const f of req.files) {
      const problem = pathProblem(f.path, limits.maxDepth, limits.maxPathLength);
      if (problem) throw new KhdError('KHD_UPLOAD_INVALID', `manifest entry '${f.path.slice(0, 200)}': ${problem}`);
      if (seen.has(f.path)) throw new KhdError('KHD_UPLOAD_INVALID', `manifest lists '${f.path}' twice`);
      if (!SHA256_HEX.test(f.sha256)) throw new KhdError('KHD_UPLOAD_INVALID', `manifest entry '${f.path}' has no valid sha256`);
      if (f.size > limits.maxFileBytes) {
        throw new KhdError('KHD_PAYLOAD_TOO_LARGE', `'${f.path}' is ${f.size} bytes; the limit for one file is ${limits.maxFileBytes}`);
      }
      seen.add(f.path);
      total += f.size;
    }
    if (total > limits.maxTotalBytes) {
      throw new KhdError('KHD_PAYLOAD_TOO_LARGE', `the upload is ${total} bytes; the limit is ${limits.maxTotalBytes}: list what to leave out in .nsmlignore`);
    }
    const id = randomUUID();
    this.uploads.insert(id, user.id, req.purpose, req.files);
    return { id, state: 'receiving' };
  }

  /** The upload, if it is the user's; another user's is answered like a missing one. */
  get(user: UserRow, id: string): UploadRow {
    const upload = this.uploads.get(id);
    if (!upload || upload.userId !== user.id) throw new KhdError('KHD_UPLOAD_NOT_FOUND', `upload '${id}' does not exist`);
    return upload;
  }

  /** The compressed body may not exceed what the files could take, plus tar's headers. */
  maxBodyBytes(upload: UploadRow): number {
    const raw = upload.files.reduce((sum, f) => sum + f.size, 0);
    return raw + upload.files.length * 2048 + 1024 * 1024;
  }

  async receive(user: UserRow, id: string, body: Readable): Promise<UploadInfo> {
    const upload = this.get(user, id);
    // One body at a time: a second PUT while the first is being extracted is refused.
    if (!this.uploads.transition(id, 'receiving', 'extracting')) {
      throw new KhdError('KHD_UPLOAD_STATE', `upload '${id}' is ${upload.state}: start a new run`);
    }
    const dest = this.dataDir.upload(id);
    try {
      await extractUpload(body, dest, upload.files, UPLOAD_LIMITS[upload.purpose]);
    } catch (err) {
      // Nothing was laid out; the same upload may be sent again.
      this.uploads.transition(id, 'extracting', 'receiving');
      throw err;
    }
    if (!this.uploads.transition(id, 'extracting', 'ready')) {
      // Cancelled while the files were arriving.
      await rm(dest, { recursive: true, force: true });
      throw new KhdError('KHD_UPLOAD_STATE', `upload '${id}' was cancelled`);
    }
    return { id, state: 'ready' };
  }

  /** Removes uploads that never became a session or a dataset, with their files. */
  async sweep(olderThan: number): Promise<number> {
    const ids = this.uploads.stale(olderThan);
    for (const id of ids) {
      this.uploads.delete(id);
      await rm(this.dataDir.upload(id), { recursive: true, force: true });
    }
    return ids.length;
  }

  /** Ctrl-C in `khd run`: the upload is dropped and a session started from it is stopped. */
  async cancel(user: UserRow, id: string): Promise<void> {
    const upload = this.get(user, id);
    if (upload.state === 'used') {
      const session = this.sessions.byUpload(id);
      if (session) this.sessionService.stop(session);
      return;
    }
    this.uploads.transition(id, upload.state, 'cancelled');
    await rm(this.dataDir.upload(id), { recursive: true, force: true });
  }
}
