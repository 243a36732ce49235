import type { Db } from './db.js';
import type { ManifestEntry, UploadEntry, UploadInfo, UploadPurpose } from '../../protocol/types.js';

export interface UploadRow extends Omit<UploadInfo, 'send' | 'hashes'> {
  userId: number;
  purpose: UploadPurpose;
  /** Every entry has its sha256 once the upload is ready (readyFiles); before, those sent unhashed lack it. */
  files: UploadEntry[];
  /** Before it is ready: the hash of each entry sent unhashed whose content arrived, by path. */
  arrived: Record<string, string>;
  createdAt: number;
  /** The laid-out tree (manifest hash), once complete. */
  tree: string | null;
}

interface RawUpload {
  id: string;
  user_id: number;
  purpose: UploadPurpose;
  state: UploadInfo['state'];
  manifest: string;
  created_at: number;
  tree: string | null;
  arrived: string | null;
}

export class UploadStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  /** The upload, and the contents it names (so a content some upload names is never collected). */
  insert(id: string, userId: number, purpose: UploadPurpose, files: UploadEntry[]): void {
    const manifest = JSON.stringify(files);
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO uploads (id, user_id, purpose, state, manifest, created_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(id, userId, purpose, 'receiving', manifest, this.now());
      this.nameContents(id, manifest);
    })();
  }

  /** The manifest, complete: with the hashes the server computed for entries sent without one, and the contents they name. */
  setFiles(id: string, files: ManifestEntry[]): void {
    const manifest = JSON.stringify(files);
    this.db.transaction(() => {
      this.db.prepare('UPDATE uploads SET manifest = ?, arrived = NULL WHERE id = ?').run(manifest, id);
      this.nameContents(id, manifest);
    })();
  }

  /** The hashes of unhashed entries whose content arrived in a body that then failed (by path), and the contents they name. */
  setArrived(id: string, arrived: Record<string, string>): void {
    const json = JSON.stringify(arrived);
    this.db.transaction(() => {
      this.db.prepare('UPDATE uploads SET arrived = ? WHERE id = ?').run(json, id);
      this.db.prepare('INSERT OR IGNORE INTO upload_contents SELECT ?, value FROM json_each(?)').run(id, json);
    })();
  }

  private nameContents(id: string, manifest: string): void {
    this.db
      .prepare("INSERT OR IGNORE INTO upload_contents SELECT ?, json_extract(f.value, '$.sha256') FROM json_each(?) f WHERE json_extract(f.value, '$.sha256') IS NOT NULL")
      .run(id, manifest);
  }

  /**
   * The user's most recent upload of this tree that was laid out (ready, or a session's), for
   * the re-run fast path: only the user's own, so knowing a tree's key never lends its code.
   */
  latestOfTree(userId: number, tree: string): string | undefined {
    const row = this.db
      .prepare("SELECT id FROM uploads WHERE tree = ? AND user_id = ? AND purpose = 'session' AND state IN ('ready', 'used') ORDER BY created_at DESC LIMIT 1")
      .get(tree, userId) as { id: string } | undefined;
    return row?.id;
  }

  /** A new upload, ready, of the same manifest and tree as `fromId` (naming the same contents, so none is collected under it). */
  copyReady(fromId: string, id: string): void {
    this.db.transaction(() => {
      this.db
        .prepare("INSERT INTO uploads (id, user_id, purpose, state, manifest, created_at, tree) SELECT ?, user_id, purpose, 'ready', manifest, ?, tree FROM uploads WHERE id = ?")
        .run(id, this.now(), fromId);
      this.db.prepare('INSERT OR IGNORE INTO upload_contents SELECT ?, sha256 FROM upload_contents WHERE upload_id = ?').run(id, fromId);
    })();
  }

  get(id: string): UploadRow | undefined {
    const r = this.db.prepare('SELECT * FROM uploads WHERE id = ?').get(id) as RawUpload | undefined;
    return (
      r && {
        id: r.id,
        userId: r.user_id,
        purpose: r.purpose,
        state: r.state,
        files: JSON.parse(r.manifest) as UploadEntry[],
        createdAt: r.created_at,
        tree: r.tree,
        arrived: r.arrived === null ? {} : (JSON.parse(r.arrived) as Record<string, string>),
      }
    );
  }

  /** Moves the upload from one state to another; false when it was not in `from` (a race lost). */
  transition(id: string, from: UploadInfo['state'], to: UploadInfo['state']): boolean {
    return this.db.prepare('UPDATE uploads SET state = ? WHERE id = ? AND state = ?').run(to, id, from).changes === 1;
  }

  /** Uploads never turned into a session or dataset, older than `before` (the caller leaves extractions in flight alone). */
  stale(before: number): string[] {
    return (
      this.db
        .prepare("SELECT id FROM uploads WHERE state IN ('receiving', 'extracting', 'ready', 'cancelled') AND created_at < ?")
        .all(before) as { id: string }[]
    ).map((r) => r.id);
  }

  /** At start no body is being read: uploads a stop caught reading can take theirs again. */
  resetExtracting(): number {
    return this.db.prepare("UPDATE uploads SET state = 'receiving' WHERE state = 'extracting'").run().changes;
  }

  /** Uploads with a laid-out tree (without their manifests: `get` reads one). */
  withTree(): { id: string; tree: string; state: UploadInfo['state'] }[] {
    return this.db.prepare('SELECT id, tree, state FROM uploads WHERE tree IS NOT NULL').all() as { id: string; tree: string; state: UploadInfo['state'] }[];
  }

  setTree(id: string, tree: string): void {
    this.db.prepare('UPDATE uploads SET tree = ? WHERE id = ?').run(tree, id);
  }

  treeInUse(tree: string): boolean {
    return this.db.prepare('SELECT 1 FROM uploads WHERE tree = ? LIMIT 1').get(tree) !== undefined;
  }

  isReferenced(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM sessions WHERE upload_id = ? LIMIT 1').get(id) !== undefined;
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM uploads WHERE id = ?').run(id);
  }
}

/** The files of an upload that is ready: each with its sha256 (an upload becomes ready only once every content arrived). */
export function readyFiles(upload: Pick<UploadRow, 'id' | 'files'>): ManifestEntry[] {
  for (const f of upload.files) {
    if (f.sha256 === undefined) throw new Error(`upload '${upload.id}' is not complete: '${f.path}' has no content yet`);
  }
  return upload.files as ManifestEntry[];
}
