import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import { KhdError } from '../../protocol/errors.js';
import { pathProblem } from '../../protocol/paths.js';
import type { CreateUploadRequest, HashFirst, ManifestEntry, UploadEntry, UploadInfo, UploadLimits, UploadPurpose } from '../../protocol/types.js';
import { UPLOAD_LIMITS } from '../config.js';
import type { DataDir } from '../data-dir.js';
import type { SessionService } from '../sessions/session-service.js';
import type { UserRow } from '../store/accounts.js';
import type { SessionStore } from '../store/sessions.js';
import { readyFiles, type UploadRow, type UploadStore } from '../store/uploads.js';
import type { BlobStore } from './blob-store.js';
import { bodyBudget, receiveContents, tarBudget } from './extract.js';
import { layOut, TreeBuilder, treeKey } from './trees.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;


/**
 * Uploads: a manifest first; the server answers which contents it lacks for this user; the CLI
 * sends only those, as one gzipped tar checked against the manifest; the code is laid out
 * from the stored contents once every one of them is here. Entries may come without a hash
 * (a cold hash cache): each is sent, and hashed here as it arrives, in one pass.
 */
export class UploadService {
  /** Uploads whose body is being read now: the only ones rightly `extracting`. */
  private readonly extracting = new Set<string>();

  constructor(
    private readonly uploads: UploadStore,
    private readonly sessions: SessionStore,
    private readonly sessionService: SessionService,
    private readonly blobs: BlobStore,
    private readonly dataDir: DataDir,
    private readonly limits: Record<UploadPurpose, UploadLimits> = UPLOAD_LIMITS,
  ) {}

  /**
   * A new upload of `req`'s manifest, and the paths to send. An entry without a hash whose
   * size one of the user's contents has may be that content: then no upload is made, and the
   * answer names the entries to hash first (so a fresh clone of a project run before still
   * sends only what the server lacks).
   */
  async create(user: UserRow, req: CreateUploadRequest): Promise<UploadInfo | HashFirst> {
    if (req.purpose === 'dataset' && !user.admin) throw new KhdError('KHD_FORBIDDEN', 'only an admin can push datasets');
    checkManifest(req, this.limits[req.purpose]);
    // Checking 5,000 paths is ~20 ms, and so is recording them: other requests get a turn between.
    await setImmediate();
    const unhashed = req.files.filter((f) => f.sha256 === undefined);
    if (unhashed.length > 0) {
      const sizes = this.blobs.userSizes(user.id, unhashed.map((f) => f.size));
      if (sizes.size > 0) return { hashFirst: unhashed.filter((f) => sizes.has(f.size)).map((f) => f.path) };
    }
    const id = randomUUID();
    this.uploads.insert(id, user.id, req.purpose, req.files);
    const send = this.toSend(user, req.files);
    if (send.length === 0) return { id, state: await this.complete(id, req.purpose, req.files as ManifestEntry[]), send };
    return { id, state: 'receiving', send };
  }

  /**
   * The re-run fast path: an upload of a tree this user's earlier upload laid out, made from
   * that one without its manifest being sent again. Every content it names was verified when
   * that upload arrived, and is kept by it. Not found when no such upload (or its tree) is here:
   * the CLI then sends the manifest.
   */
  reuse(user: UserRow, tree: string): UploadInfo {
    const from = this.uploads.latestOfTree(user.id, tree);
    if (!from || !existsSync(this.dataDir.tree(tree))) {
      throw new KhdError('KHD_UPLOAD_NOT_FOUND', 'no earlier upload of this tree is on the server: send its manifest');
    }
    const id = randomUUID();
    this.uploads.copyReady(from, id);
    return { id, state: 'ready', send: [] };
  }

  /** One path per content the user has not sent before, and every entry without a hash. */
  private toSend(user: UserRow, files: UploadEntry[]): string[] {
    const missing = new Set(this.blobs.missing(user.id, files.flatMap((f) => (f.sha256 === undefined ? [] : [f.sha256]))));
    const send: string[] = [];
    for (const f of files) {
      if (f.sha256 === undefined || missing.delete(f.sha256)) send.push(f.path);
    }
    return send;
  }

  /** The upload, if it is the user's; another user's is answered like a missing one. */
  get(user: UserRow, id: string): UploadRow {
    const upload = this.uploads.get(id);
    if (!upload || upload.userId !== user.id) throw new KhdError('KHD_UPLOAD_NOT_FOUND', `upload '${id}' does not exist`);
    return upload;
  }

  /** The body may not exceed what the upload's contents could take as a tar (gzipped, when it is). */
  maxBodyBytes(upload: UploadRow, gzip: boolean): number {
    const tar = tarBudget(contentsOf(upload.files).values());
    return gzip ? bodyBudget(tar) : tar;
  }

  /**
   * Receives the body of `upload` (the user's, as `get` found it). Entries sent without a hash
   * get the one their content arrived with, kept even when the body fails (so a body sent
   * again may leave them out); once ready, the answer gives those hashes in the manifest's order.
   */
  async receive(user: UserRow, fromStore: UploadRow, body: Readable, gzip: boolean): Promise<UploadInfo> {
    const id = fromStore.id;
    // One body at a time: a second PUT while the first is being read is refused.
    if (!this.uploads.transition(id, 'receiving', 'extracting')) {
      throw new KhdError('KHD_UPLOAD_STATE', `upload '${id}' is ${fromStore.state}: start a new run`);
    }
    this.extracting.add(id);
    const unhashed = fromStore.files.filter((f) => f.sha256 === undefined);
    // Those that arrived in an earlier body have their hash now.
    const computed = new Map<string, string>(Object.entries(fromStore.arrived));
    const upload = { ...fromStore, files: fromStore.files.map((f) => (f.sha256 === undefined && computed.has(f.path) ? { ...f, sha256: computed.get(f.path) } : f)) };
    // A session's tree is laid out as its contents arrive (unless it is on disk already; its
    // key is known only once every entry has its hash).
    const known = upload.purpose === 'session' && unhashed.length === 0 ? treeKey(upload.files as ManifestEntry[]) : undefined;
    const tree = upload.purpose === 'session' && !(known && existsSync(this.dataDir.tree(known))) ? new TreeBuilder(this.dataDir.treesRoot, upload.files, (sha) => this.blobs.path(sha)) : undefined;
    try {
      const wanted = contentsOf(upload.files);
      // Which of them are stored already (sent by someone), asked once instead of per content.
      const stored = this.blobs.recordedAmong([...wanted.values()].flatMap((f) => (f.sha256 === undefined ? [] : [f.sha256])));
      // Not awaited: the body is read from now on (its end or its loss must not go unheard).
      let laying: Promise<void> | undefined;
      if (tree) {
        const lacking = new Set(this.blobs.missing(user.id, upload.files.flatMap((f) => (f.sha256 === undefined ? [] : [f.sha256]))));
        laying = tree.start((sha) => !lacking.has(sha));
        laying.catch(() => {});
      }
      const sink = {
        tmpFile: () => this.blobs.tmpFile(),
        commit: async (tmp: string, sha: string, size: number, entry: UploadEntry) => {
          await this.blobs.commit(tmp, sha, size, user.id);
          if (entry.sha256 === undefined) computed.set(entry.path, sha);
          tree?.arrived(sha, entry);
        },
        // The tree's files from a small content are placed by the writer thread, right after it
        // writes the content (or here, when the content was stored already).
        store: async (data: Buffer, sha: string, entry: UploadEntry) => {
          await this.blobs.store(data, sha, user.id, stored, tree?.claim(sha, entry));
          if (entry.sha256 === undefined) computed.set(entry.path, sha);
        },
      };
      await receiveContents(body, gzip, wanted, sink, this.limits[upload.purpose]).finally(() => this.blobs.flush());
      await laying;
      const files = upload.files.map((f) => (f.sha256 === undefined ? { ...f, sha256: computed.get(f.path) } : f));
      const send = this.toSend(user, files);
      if (send.length > 0) {
        throw new KhdError('KHD_UPLOAD_INVALID', `upload incomplete: ${send.length} file(s) never arrived (${send.slice(0, 5).join(', ')}): run again to send them`);
      }
      await setImmediate();
      if (unhashed.length > 0) this.uploads.setFiles(id, files as ManifestEntry[]);
      await setImmediate();
      const state = await this.complete(id, upload.purpose, files as ManifestEntry[], 'extracting', tree);
      return { id, state, send: [], ...(unhashed.length > 0 ? { hashes: unhashed.map((f) => computed.get(f.path)!) } : {}) };
    } catch (err) {
      // What arrived whole is kept (with the hashes of those sent unhashed); the same upload, or a new run, sends the rest.
      if (computed.size > Object.keys(fromStore.arrived).length) this.uploads.setArrived(id, Object.fromEntries(computed));
      this.uploads.transition(id, 'extracting', 'receiving');
      await tree?.abort();
      throw err;
    } finally {
      this.extracting.delete(id);
    }
  }

  /**
   * Lays the code out from the stored contents (or finishes the tree laid out while they
   * arrived), once per distinct tree: an unchanged project reuses the tree of its last run. Datasets are laid out by the dataset service instead.
   * A cancel that came first wins.
   */
  private async complete(id: string, purpose: UploadPurpose, files: ManifestEntry[], from: UploadInfo['state'] = 'receiving', tree?: TreeBuilder): Promise<UploadInfo['state']> {
    if (purpose === 'session') {
      const key = treeKey(files);
      const dest = this.dataDir.tree(key);
      // Recorded first, so a sweep of another upload of the same tree keeps it.
      this.uploads.setTree(id, key);
      if (tree) await tree.finish(dest);
      else if (!existsSync(dest)) await layOut(dest, files, (sha) => this.blobs.path(sha));
    }
    if (!this.uploads.transition(id, from, 'ready')) throw new KhdError('KHD_UPLOAD_STATE', `upload '${id}' was cancelled`);
    return 'ready';
  }

  contentPath(sha256: string): string {
    return this.blobs.path(sha256);
  }

  /**
   * Removes uploads that never became a session or a dataset, with their files; one left
   * `extracting` by a read that is no longer under way (a crash, a hung client) goes too.
   */
  async sweep(olderThan: number): Promise<number> {
    const ids = this.uploads.stale(olderThan).filter((id) => !this.extracting.has(id));
    for (const id of ids) await forgetUpload(this.uploads, this.dataDir, id);
    return ids.length;
  }

  /**
   * At start, nothing is being read: an upload a stop caught `extracting` can take its body again
   * (what arrived whole is kept); trees half laid out and temporary contents are removed; an
   * upload whose tree went missing is laid out again from its contents, or forgotten.
   */
  async recover(): Promise<void> {
    this.uploads.resetExtracting();
    await this.blobs.clearTmp();
    await this.dataDir.removePartialTrees();
    for (const upload of this.uploads.withTree()) {
      if (existsSync(this.dataDir.tree(upload.tree))) continue;
      try {
        await layOut(this.dataDir.tree(upload.tree), readyFiles(this.uploads.get(upload.id)!), (sha) => this.blobs.path(sha));
      } catch {
        // A content is gone too: a session from it fails with its reason; an unused upload is dropped.
        if (upload.state !== 'used') await forgetUpload(this.uploads, this.dataDir, upload.id);
      }
    }
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
  }
}

/**
 * The contents an upload may carry, by path: any manifest path may carry its content, one per
 * content is enough; every entry sent without a hash carries its own.
 */
function contentsOf(files: UploadEntry[]): Map<string, UploadEntry> {
  const wanted = new Map<string, UploadEntry>();
  const seen = new Set<string>();
  for (const f of files) {
    if (f.sha256 !== undefined) {
      if (seen.has(f.sha256)) continue;
      seen.add(f.sha256);
    }
    wanted.set(f.path, f);
  }
  return wanted;
}

/** Deletes an upload record, and its tree when no other upload uses it. */
export async function forgetUpload(uploads: UploadStore, dataDir: DataDir, id: string): Promise<void> {
  const tree = uploads.get(id)?.tree;
  uploads.delete(id);
  if (tree && !uploads.treeInUse(tree)) await rm(dataDir.tree(tree), { recursive: true, force: true });
}

/**
 * Refuses a manifest the server could not lay out faithfully: bad paths, duplicates (also
 * paths that differ only by Unicode normalisation or case, which collide on many laptops'
 * file systems), bad hashes, and anything over the limits.
 */
export function checkManifest(req: CreateUploadRequest, limits: UploadLimits): void {
  if (req.files.length === 0) throw new KhdError('KHD_UPLOAD_INVALID', 'the upload holds no files');
  if (req.files.length > limits.maxFiles) {
    throw new KhdError('KHD_PAYLOAD_TOO_LARGE', `the upload has ${req.files.length} files; the limit is ${limits.maxFiles}: list what to leave out in .nsmlignore`);
  }
  const seen = new Map<string, string>();
  /** Every folder the paths name, as the same key: a file of that name could not be laid out. */
  const folders = new Map<string, string>();
  let total = 0;
  for (const f of req.files) {
    const problem = pathProblem(f.path, limits.maxDepth, limits.maxPathLength);
    if (problem) throw new KhdError('KHD_UPLOAD_INVALID', `manifest entry '${f.path.slice(0, 200)}': ${problem}`);
    const key = f.path.normalize('NFC').toLowerCase();
    const twin = seen.get(key);
    if (twin !== undefined) {
      throw new KhdError(
        'KHD_UPLOAD_INVALID',
        twin === f.path ? `manifest lists '${f.path}' twice` : `'${twin}' and '${f.path}' differ only by case or Unicode normalisation: rename one`,
      );
    }
    if (f.sha256 !== undefined && !SHA256_HEX.test(f.sha256)) throw new KhdError('KHD_UPLOAD_INVALID', `manifest entry '${f.path}' has no valid sha256`);
    if (f.size > limits.maxFileBytes) {
      throw new KhdError('KHD_PAYLOAD_TOO_LARGE', `'${f.path}' is ${f.size} bytes; the limit for one file is ${limits.maxFileBytes}`);
    }
    seen.set(key, f.path);
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const folder = parts.slice(0, i).join('/');
      const folderKey = folder.normalize('NFC').toLowerCase();
      if (!folders.has(folderKey)) folders.set(folderKey, f.path);
    }
    total += f.size;
  }
  for (const [key, path] of seen) {
    const inside = folders.get(key);
    if (inside !== undefined) throw new KhdError('KHD_UPLOAD_INVALID', `'${path}' is a file, and a folder of '${inside}': rename one`);
  }
  if (total > limits.maxTotalBytes) {
    throw new KhdError('KHD_PAYLOAD_TOO_LARGE', `the upload is ${total} bytes; the limit is ${limits.maxTotalBytes}: list what to leave out in .nsmlignore`);
  }
}
