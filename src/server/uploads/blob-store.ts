import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Statement } from 'better-sqlite3';
import type { Db } from '../store/db.js';
import * as fs from 'node:fs';
import { BlobWriter } from './blob-writer.js';
import { placeContent } from './place.js';
import type { Placement } from './trees.js';

/**
 * File contents by sha256, stored once per server. Who may use a content is tracked per user:
 * a user is told a content is already here only if that user sent it before, so knowing a hash
 * never gives access to another user's file (the classic dedup side channel).
 */
export class BlobStore {
  readonly tmpDir: string;
  private readonly hasBlob: Statement<[string]>;
  private readonly recordTx: (rows: PendingRecord[]) => void;
  private readonly collectTx: (olderThan: number) => string[];
  /** Contents stored but not yet recorded: written to the database in batches (see flush). */
  private pending: PendingRecord[] = [];
  private readonly pendingShas = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly writer = new BlobWriter();
  private readonly tmpPrefix = randomBytes(6).toString('hex');
  private tmpCount = 0;

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
    const addSize = db.prepare('INSERT OR IGNORE INTO user_sizes (user_id, size) VALUES (?, ?)');
    // A content is live while some upload names it. upload_contents has no index by content (it
    // would cost every upload ~14 µs per file): the sweep reads it once, into one lookup set.
    const deadBlobs = db
      .prepare('SELECT b.sha256 FROM blobs b WHERE b.created_at < ? AND b.sha256 NOT IN (SELECT sha256 FROM upload_contents)')
      .pluck();
    // Owners have no index by content (one per content cost every upload): read once for all.
    const dropOwners = db.prepare('DELETE FROM user_blobs WHERE sha256 IN (SELECT value FROM json_each(?))');
    const dropBlobs = db.prepare('DELETE FROM blobs WHERE sha256 IN (SELECT value FROM json_each(?))');
    this.collectTx = db.transaction((olderThan: number) => {
      const dead = deadBlobs.all(olderThan) as string[];
      if (dead.length > 0) {
        dropOwners.run(JSON.stringify(dead));
        dropBlobs.run(JSON.stringify(dead));
      }
      return dead;
    });
    this.recordTx = db.transaction((rows: PendingRecord[]) => {
      const at = this.now();
      const sizes = new Set<string>();
      for (const r of rows) {
        addBlob.run(r.sha256, r.size, at);
        addOwner.run(r.userId, r.sha256);
        const size = `${r.userId}:${r.size}`;
        if (!sizes.has(size)) addSize.run(r.userId, r.size);
        sizes.add(size);
      }
    });
  }

  path(sha256: string): string {
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  /** A fresh temporary file name for a content on its way in (a random prefix per store, then a count: no syscall each). */
  tmpFile(): string {
    return join(this.tmpDir, `${this.tmpPrefix}-${++this.tmpCount}`);
  }

  /** The contents among `shas` this user has not sent yet (and so must send), in one query. */
  missing(userId: number, shas: string[]): string[] {
    this.flush();
    const rows = this.db
      .prepare(
        `SELECT DISTINCT j.value AS sha FROM json_each(?) j
         WHERE NOT EXISTS (SELECT 1 FROM user_blobs ub WHERE ub.user_id = ? AND ub.sha256 = j.value)`,
      )
      .all(JSON.stringify(shas), userId) as { sha: string }[];
    return rows.map((r) => r.sha);
  }

  /**
   * Which of `sizes` some content this user sent has, in one query: a file of any other size
   * cannot be one of the user's contents, so it is sent without being hashed first. The sizes
   * are kept as contents are recorded and not dropped when contents are collected: at worst a
   * file is hashed first for nothing, never sent again for nothing.
   */
  userSizes(userId: number, sizes: number[]): Set<number> {
    this.flush();
    const rows = this.db
      .prepare('SELECT s.size FROM json_each(?) j JOIN user_sizes s ON s.user_id = ? AND s.size = j.value')
      .pluck()
      .all(JSON.stringify([...new Set(sizes)]), userId) as number[];
    return new Set(rows);
  }

  /**
   * Which of `shas` are recorded as stored, in one query: a receive asks once for all its
   * contents (a query per content was ~57 ms of the main thread for 5,000). One recorded
   * meanwhile by another upload is written again, whole, as a new file: no harm.
   */
  recordedAmong(shas: string[]): Set<string> {
    this.flush();
    const rows = this.db.prepare('SELECT b.sha256 FROM json_each(?) j JOIN blobs b ON b.sha256 = j.value').pluck().all(JSON.stringify(shas)) as string[];
    return new Set(rows);
  }

  /** Moves a verified temporary file into the store (or drops it when the content is there) and records the owner. */
  async commit(tmp: string, sha256: string, size: number, userId: number): Promise<void> {
    if (this.known(sha256)) await rm(tmp, { force: true });
    else await rename(tmp, this.path(sha256));
    this.record(sha256, size, userId);
  }

  /**
   * Stores a small content verified in memory, written by the writer thread (BlobWriter) as a
   * new file, then recorded: only a recorded content is ever used. `stored`: the contents known
   * to be stored when the receive began (BlobStore.recordedAmong), instead of a query each.
   * Two uploads bringing the same new content at once both write it; each rename is whole.
   * `data` is copied before the first await: it may be a view of a parser's buffer. `placed`:
   * files of a tree to place from the content once it is there (by the writer thread, after
   * the write; here, when the content was stored already).
   */
  async store(data: Uint8Array, sha256: string, userId: number, stored?: Set<string>, placed: Placement[] = []): Promise<void> {
    const known = stored ? stored.has(sha256) || this.pendingShas.has(sha256) : this.known(sha256);
    if (!known) await this.writer.write(this.tmpFile(), this.path(sha256), data, placed);
    else for (const p of placed) placeContent(fs, this.path(sha256), p.file, p.executable);
    this.record(sha256, data.length, userId);
  }

  /** Stops the writer thread (the server is closing). */
  close(): Promise<void> {
    this.flush();
    return this.writer.close();
  }

  /**
   * Records the pending contents and their owners in one transaction: one per content made
   * thousands of commits per upload. Done when FLUSH_EVERY are pending, FLUSH_AFTER_MS after
   * the first, before answering an upload and when the server closes: a crash loses at most
   * the records of that last moment, whose contents are then only sent again.
   */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    this.recordTx(rows);
    this.pendingShas.clear();
  }

  /**
   * Removes the contents no upload names any more (their sessions removed, their uploads swept,
   * their dataset laid out) that were stored before `olderThan`, and temporary files older than
   * that. The records go first, in one transaction, then the files, in the same synchronous
   * step: no upload can be told a content is here while it is being removed, and a file whose
   * removal fails is only an orphan that the next arrival of that content writes over. Trees,
   * work folders and datasets keep their own links to what they use. Returns how many went.
   */
  collect(olderThan: number): number {
    this.flush();
    const dead = this.collectTx(olderThan);
    for (const sha of dead) rmSync(this.path(sha), { force: true });
    for (const name of readdirSync(this.tmpDir)) {
      const file = join(this.tmpDir, name);
      if ((statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Infinity) < olderThan) rmSync(file, { force: true });
    }
    return dead.length;
  }

  /** At start, when no upload is being received: every temporary file is an orphan. */
  async clearTmp(): Promise<void> {
    for (const name of await readdir(this.tmpDir)) await rm(join(this.tmpDir, name), { force: true });
  }

  private known(sha256: string): boolean {
    return this.pendingShas.has(sha256) || this.hasBlob.get(sha256) !== undefined;
  }

  private record(sha256: string, size: number, userId: number): void {
    this.pending.push({ sha256, size, userId });
    this.pendingShas.add(sha256);
    if (this.pending.length >= FLUSH_EVERY) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_AFTER_MS).unref();
  }
}

interface PendingRecord {
  sha256: string;
  size: number;
  userId: number;
}

const FLUSH_EVERY = 1024;
const FLUSH_AFTER_MS = 50;
