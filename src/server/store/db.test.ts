import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, openDb } from './db.js';
import { MIGRATIONS } from './migrations.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'khd-db-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('migrations', () => {
  it('bring a data dir of an older khd up to date, keeping its data', () => {
    // A data dir as khd left it at schema 3, with an upload naming two contents.
    const old = new Database(join(dir, 'khd.db'));
    for (const sql of MIGRATIONS.slice(0, 3)) old.exec(sql);
    old.pragma('user_version = 3');
    old.exec(`INSERT INTO teams (id, name, created_at) VALUES (1, 't', 0);
              INSERT INTO users (id, name, team_id, password_hash, created_at) VALUES (1, 'kim', 1, 'x', 0);`);
    const manifest = JSON.stringify([
      { path: 'a.py', size: 1, mode: 420, sha256: 'a'.repeat(64) },
      { path: 'b.py', size: 1, mode: 420, sha256: 'b'.repeat(64) },
      { path: 'c.py', size: 1, mode: 420, sha256: 'a'.repeat(64) },
    ]);
    old.prepare("INSERT INTO uploads (id, user_id, purpose, state, manifest, created_at) VALUES ('u1', 1, 'session', 'ready', ?, 0)").run(manifest);
    old.close();

    const db = openDb(join(dir, 'khd.db'));
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.prepare('SELECT sha256 FROM upload_contents WHERE upload_id = ? ORDER BY sha256').pluck().all('u1')).toEqual(['a'.repeat(64), 'b'.repeat(64)]);
    // Removing the upload removes what it names.
    db.prepare("DELETE FROM uploads WHERE id = 'u1'").run();
    expect(db.prepare('SELECT COUNT(*) FROM upload_contents').pluck().get()).toBe(0);
    db.close();
  });

  it('keeps contents and their owners when their tables are rebuilt by key (12), with their references and their sizes (13)', () => {
    const old = new Database(join(dir, 'khd.db'));
    old.pragma('foreign_keys = ON');
    for (const sql of MIGRATIONS.slice(0, 11)) old.exec(sql);
    old.pragma('user_version = 11');
    old.exec(`INSERT INTO teams (id, name, created_at) VALUES (1, 't', 0);
              INSERT INTO users (id, name, team_id, password_hash, created_at) VALUES (1, 'kim', 1, 'x', 0), (2, 'lee', 1, 'x', 0);
              INSERT INTO blobs (sha256, size, created_at) VALUES ('${'a'.repeat(64)}', 5, 7), ('${'b'.repeat(64)}', 6, 8);
              INSERT INTO user_blobs (user_id, sha256) VALUES (1, '${'a'.repeat(64)}'), (2, '${'a'.repeat(64)}'), (2, '${'b'.repeat(64)}');`);
    old.close();

    const db = openDb(join(dir, 'khd.db'));
    expect(db.prepare('SELECT sha256, size, created_at FROM blobs ORDER BY sha256').all()).toEqual([
      { sha256: 'a'.repeat(64), size: 5, created_at: 7 },
      { sha256: 'b'.repeat(64), size: 6, created_at: 8 },
    ]);
    expect(db.prepare('SELECT user_id, sha256 FROM user_blobs ORDER BY user_id, sha256').all()).toHaveLength(3);
    // The sizes of each user's contents are filled in (13): a cold hash cache asks by them.
    expect(db.prepare('SELECT user_id, size FROM user_sizes ORDER BY user_id, size').all()).toEqual([
      { user_id: 1, size: 5 },
      { user_id: 2, size: 5 },
      { user_id: 2, size: 6 },
    ]);
    // An owner of a content that is not stored is still refused; removing a user removes what it owned.
    expect(() => db.prepare('INSERT INTO user_blobs (user_id, sha256) VALUES (1, ?)').run('c'.repeat(64))).toThrow(/FOREIGN KEY/);
    db.prepare('DELETE FROM users WHERE id = 2').run();
    expect(db.prepare('SELECT user_id FROM user_blobs').pluck().all()).toEqual([1]);
    expect(db.prepare('SELECT DISTINCT user_id FROM user_sizes').pluck().all()).toEqual([1]);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name LIKE '%by_key%'").all()).toEqual([]);
    db.close();
  });

  it('refuses a data dir from a newer khd, saying to upgrade', () => {
    const db = new Database(join(dir, 'khd.db'));
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    expect(() => migrate(db)).toThrow(`data dir schema version ${MIGRATIONS.length + 1} is newer than this khd knows (${MIGRATIONS.length}): upgrade khd`);
    db.close();
  });
});
