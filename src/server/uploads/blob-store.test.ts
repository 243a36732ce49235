import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../store/db.js';
import { BlobStore } from './blob-store.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('blob store', () => {
  let dir: string;
  let db: Db;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'khd-blobs-'));
    db = openDb(join(dir, 'khd.db'));
    db.exec(`INSERT INTO teams (id, name, created_at) VALUES (1, 't1', 0), (2, 't2', 0);
             INSERT INTO users (id, name, team_id, password_hash, created_at) VALUES (1, 'kim', 1, 'x', 0), (2, 'lee', 2, 'x', 0);`);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a content once and tells each user only about what that user sent', async () => {
    const blobs = new BlobStore(db, join(dir, 'blobs'), () => 0);
    await blobs.store(Buffer.from('hello'), sha('hello'), 1);
    expect(blobs.missing(1, [sha('hello'), sha('other')])).toEqual([sha('other')]);
    // Lee has not sent it: knowing the hash is not enough.
    expect(blobs.missing(2, [sha('hello')])).toEqual([sha('hello')]);
    await blobs.store(Buffer.from('hello'), sha('hello'), 2);
    expect(blobs.missing(2, [sha('hello')])).toEqual([]);
    expect(readFileSync(blobs.path(sha('hello')), 'utf8')).toBe('hello');
    expect(db.prepare('SELECT COUNT(*) AS n FROM blobs').get()).toEqual({ n: 1 });
  });

  it('records what arrived in batches, soon after it arrived, without being asked', async () => {
    const blobs = new BlobStore(db, join(dir, 'blobs'), () => 0);
    await blobs.store(Buffer.from('a'), sha('a'), 1);
    const recorded = () => db.prepare('SELECT COUNT(*) AS n FROM user_blobs').get();
    expect(recorded()).toEqual({ n: 0 });
    await new Promise((r) => setTimeout(r, 150));
    expect(recorded()).toEqual({ n: 1 });
  });

  it('does not write a content twice while its record is pending', async () => {
    const blobs = new BlobStore(db, join(dir, 'blobs'), () => 0);
    await blobs.store(Buffer.from('same'), sha('same'), 1);
    await blobs.store(Buffer.from('SAME'), sha('same'), 2);
    blobs.flush();
    expect(readFileSync(blobs.path(sha('same')), 'utf8')).toBe('same');
    expect(blobs.missing(2, [sha('same')])).toEqual([]);
  });
});
