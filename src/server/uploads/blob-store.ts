import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Db } from '../store/db.js';

/**
 * File contents by sha256, stored once per server. Who may use a content is tracked per user:
 * a user is told a content is already here only if that user sent it before, so knowing a hash
 * never gives access to another user's file (the classic dedup side channel).
 */
export class BlobStore {
  readonly tmpDir: string;

  constructor(
    private readonly db: Db,
    private readonly root: string,
    private readonly now: () => number,
  ) {
    this.tmpDir = join(root, '.tmp');
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  path(sha256: string): string {
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  /** A fresh temporary file name for a content on its way in. */
  tmpFile(): string {
    return join(this.tmpDir, randomBytes(12).toString('hex'));
  }

  /** The contents among `shas` this user has not sent yet (and so must send). */
  missing(userId: number, shas: string[]): string[] {
    const has = this.db.prepare('SELECT 1 FROM user_blobs ub JOIN blobs b ON b.sha256 = ub.sha256 WHERE ub.user_id = ? AND ub.sha256 = ?');
    return [...new Set(shas)].filter((sha) => !has.get(userId, sha) || !existsSync(this.path(sha)));
  }

  /** Moves a verified temporary file into the store (or drops it when the content is there) and records the owner. */
  async commit(tmp: string, sha256: string, size: number, userId: number): Promise<void> {
    const dest = this.path(sha256);
    if (existsSync(dest)) {
      await rm(tmp, { force: true });
    } else {
      await mkdir(join(this.root, sha256.slice(0, 2)), { recursive: true, mode: 0o700 });
      await rename(tmp, dest);
    }
    this.db.transaction(() => {
      this.db.prepare('INSERT OR IGNORE INTO blobs (sha256, size, created_at) VALUES (?, ?, ?)').run(sha256, size, this.now());
      this.db.prepare('INSERT OR IGNORE INTO user_blobs (user_id, sha256) VALUES (?, ?)').run(userId, sha256);
    })();
  }
}
