import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Statement } from 'better-sqlite3';
import type { Db } from '../store/db.js';

/**
 * File contents by sha256, stored once per server. Who may use a content is tracked per user:
 * a user is told a content is already here only if that user sent it before, so knowing a hash
 * never gives access to another user's file (the classic dedup side channel).
 */
export class BlobStore {
  readonly tmpDir: string;
  private readonly hasBlob: Statement<[string]>;
  private readonly recordTx: (sha256: string, size: number, userId: number) => void;

  constructor(
    private readonly db: Db,
    private readonly root: string,
    private readonly now: () => number,
  ) {
    this.tmpDir = join(root, '.tmp');
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    // All 256 shard folders up front: no mkdir per content on the way in.
    for (let i = 0; i < 256; i++) mkdirSync(join(root, i.toString(16).padStart(2, '0')), { recursive: true, mode: 0o700 });
    this.hasBlob = db.prepare('SELECT 1 FROM blobs WHERE sha256 = ?');
    const addBlob = db.prepare('INSERT OR IGNORE INTO blobs (sha256, size, created_at) VALUES (?, ?, ?)');
    const addOwner = db.prepare('INSERT OR IGNORE INTO user_blobs (user_id, sha256) VALUES (?, ?)');
    this.recordTx = db.transaction((sha256: string, size: number, userId: number) => {
      addBlob.run(sha256, size, this.now());
      addOwner.run(userId, sha256);
    });
  }

  path(sha256: string): string {
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  /** A fresh temporary file name for a content on its way in. */
  tmpFile(): string {
    return join(this.tmpDir, randomBytes(12).toString('hex'));
  }

  /** The contents among `shas` this user has not sent yet (and so must send), in one query. */
  missing(userId: number, shas: string[]): string[] {
    const rows = this.db
      .prepare(
        `SELECT DISTINCT j.value AS sha FROM json_each(?) j
         WHERE NOT EXISTS (SELECT 1 FROM user_blobs ub WHERE ub.user_id = ? AND ub.sha256 = j.value)`,
      )
      .all(JSON.stringify(shas), userId) as { sha: string }[];
    return rows.map((r) => r.sha);
  }

  /** Moves a verified temporary file into the store (or drops it when the content is there) and records the owner. */
  async commit(tmp: string, sha256: string, size: number, userId: number): Promise<void> {
    if (this.known(sha256)) await rm(tmp, { force: true });
    else await rename(tmp, this.path(sha256));
    this.record(sha256, size, userId);
  }

  /**
   * Stores a small content verified in memory, written straight to its place: only a recorded
   * content is ever used, and a file left half-written by a crash has no record, so it is
   * written over the next time that content arrives.
   */
  async store(data: Buffer, sha256: string, userId: number): Promise<void> {
    if (!this.known(sha256)) await writeFile(this.path(sha256), data, { mode: 0o644 });
    this.record(sha256, data.length, userId);
  }

  private known(sha256: string): boolean {
    return this.hasBlob.get(sha256) !== undefined;
  }

  private record(sha256: string, size: number, userId: number): void {
    this.recordTx(sha256, size, userId);
  }


}
