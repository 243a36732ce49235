import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../store/db.js';
import { UploadStore } from '../store/uploads.js';
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

  it('places a tree’s files from a content after writing it (links; an executable, a copy of its own), or at once when it is stored', async () => {
    const blobs = new BlobStore(db, join(dir, 'blobs'), () => 0);
    const tree = mkdtempSync(join(dir, 'tree-'));
    const placed = [
      { file: join(tree, 'a.py'), executable: false },
      { file: join(tree, 'run.sh'), executable: true },
    ];
    await blobs.store(Buffer.from('#!/bin/sh\n'), sha('#!/bin/sh\n'), 1, undefined, placed);
    expect(statSync(join(tree, 'a.py')).ino).toBe(statSync(blobs.path(sha('#!/bin/sh\n'))).ino);
    expect(statSync(join(tree, 'run.sh')).ino).not.toBe(statSync(blobs.path(sha('#!/bin/sh\n'))).ino);
    expect(statSync(join(tree, 'run.sh')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(tree, 'run.sh'), 'utf8')).toBe('#!/bin/sh\n');
    // Stored already (and recorded): nothing is written, the file is placed here.
    blobs.flush();
    await blobs.store(Buffer.from('#!/bin/sh\n'), sha('#!/bin/sh\n'), 2, blobs.recordedAmong([sha('#!/bin/sh\n')]), [{ file: join(tree, 'b.py'), executable: false }]);
    expect(statSync(join(tree, 'b.py')).ino).toBe(statSync(blobs.path(sha('#!/bin/sh\n'))).ino);
    // A file that cannot be placed fails the store, naming why.
    await expect(blobs.store(Buffer.from('x'), sha('x'), 1, undefined, [{ file: join(tree, 'missing-folder', 'x.py'), executable: false }])).rejects.toThrow(/placing it in the tree: ENOENT/);
    await blobs.close();
  });

  it('records what arrived in batches, soon after it arrived, without being asked', async () => {
    const blobs = new BlobStore(db, join(dir, 'blobs'), () => 0);
    await blobs.store(Buffer.from('a'), sha('a'), 1);
    const recorded = () => db.prepare('SELECT COUNT(*) AS n FROM user_blobs').get();
    expect(recorded()).toEqual({ n: 0 });
    await expect.poll(recorded).toEqual({ n: 1 });
  });

  it('replaces a half-written leftover whole (a new file), so a tree linking the old one is never written into', async () => {
    const blobs = new BlobStore(db, join(dir, 'blobs'), () => 0);
    const place = blobs.path(sha('whole content'));
    // A crash's leftover at the content's place, with no record, and a tree's link to it.
    writeFileSync(place, 'whole');
    linkSync(place, join(dir, 'tree-file'));
    await blobs.store(Buffer.from('whole content'), sha('whole content'), 1);
    expect(readFileSync(place, 'utf8')).toBe('whole content');
    expect(readFileSync(join(dir, 'tree-file'), 'utf8')).toBe('whole');
    expect(statSync(place).ino).not.toBe(statSync(join(dir, 'tree-file')).ino);
    expect(readdirSync(blobs.tmpDir)).toEqual([]);
    await blobs.close();
  });

  it('stores the same new content brought by two uploads at once, whole, for both users', async () => {
    const blobs = new BlobStore(db, join(dir, 'blobs'), () => 0);
    const data = Buffer.alloc(300_000, 7);
    const digest = createHash('sha256').update(data).digest('hex');
    // Views into a larger buffer, as a parser hands them over: only the view is stored.
    const big = Buffer.concat([Buffer.from('x'.repeat(100)), data, Buffer.from('y'.repeat(100))]);
    await Promise.all([blobs.store(big.subarray(100, 100 + data.length), digest, 1), blobs.store(Buffer.from(data), digest, 2)]);
    blobs.flush();
    expect(readFileSync(blobs.path(digest)).equals(data)).toBe(true);
    expect(blobs.missing(1, [digest])).toEqual([]);
    expect(blobs.missing(2, [digest])).toEqual([]);
    // The bytes are copied as the write is queued: the caller's memory (a parser's buffer) may be
    // reused at once, and is never emptied by a hand-over to the writer thread.
    const piece = Buffer.alloc(3000, 3).subarray(1000, 2000);
    const pieceSha = createHash('sha256').update(piece).digest('hex');
    const writing = blobs.store(piece, pieceSha, 1);
    expect(piece.length).toBe(1000);
    piece.fill(9);
    await writing;
    expect(readFileSync(blobs.path(pieceSha))).toEqual(Buffer.alloc(1000, 3));
    await blobs.close();
  });

  it('does not write a content twice while its record is pending', async () => {
    const blobs = new BlobStore(db, join(dir, 'blobs'), () => 0);
    await blobs.store(Buffer.from('same'), sha('same'), 1);
    await blobs.store(Buffer.from('SAME'), sha('same'), 2);
    blobs.flush();
    expect(readFileSync(blobs.path(sha('same')), 'utf8')).toBe('same');
    expect(blobs.missing(2, [sha('same')])).toEqual([]);
  });

  it('collects the contents no upload names, records and files together, and keeps named and recent ones', async () => {
    let clock = 0;
    const blobs = new BlobStore(db, join(dir, 'blobs'), () => clock);
    const uploads = new UploadStore(db, () => clock);
    for (const [text, user] of [['old-unnamed', 1], ['old-named', 1], ['theirs', 2]] as const) await blobs.store(Buffer.from(text), sha(text), user);
    uploads.insert('u1', 1, 'session', [{ path: 'a.py', size: 8, mode: 0o644, sha256: sha('old-named') }]);
    blobs.flush();
    clock = 100;
    await blobs.store(Buffer.from('recent'), sha('recent'), 1);
    const oldTmp = join(blobs.tmpDir, 'left-by-a-crash');
    writeFileSync(oldTmp, 'x');
    utimesSync(oldTmp, 0, 0);
    const newTmp = join(blobs.tmpDir, 'in-flight');
    writeFileSync(newTmp, 'x');

    expect(blobs.collect(50)).toBe(2);
    const onDisk = (text: string) => existsSync(blobs.path(sha(text)));
    expect(['old-unnamed', 'old-named', 'theirs', 'recent'].map(onDisk)).toEqual([false, true, false, true]);
    // The records went with the files: whoever sent a collected content is asked for it again.
    expect(blobs.missing(1, [sha('old-unnamed'), sha('old-named'), sha('recent')])).toEqual([sha('old-unnamed')]);
    expect(blobs.missing(2, [sha('theirs')])).toEqual([sha('theirs')]);
    expect(db.prepare('SELECT COUNT(*) AS n FROM blobs').get()).toEqual({ n: 2 });
    expect([existsSync(oldTmp), existsSync(newTmp)]).toEqual([false, true]);

    // Sent again, it is stored again and kept while an upload names it.
    await blobs.store(Buffer.from('old-unnamed'), sha('old-unnamed'), 1);
    uploads.insert('u2', 1, 'session', [{ path: 'b.py', size: 11, mode: 0o644, sha256: sha('old-unnamed') }]);
    blobs.flush();
    clock = 1000;
    expect(blobs.collect(500)).toBe(1);
    expect(['old-unnamed', 'old-named', 'recent'].map(onDisk)).toEqual([true, true, false]);
    expect(readFileSync(blobs.path(sha('old-unnamed')), 'utf8')).toBe('old-unnamed');
    // Once no upload names anything, everything old enough goes.
    uploads.delete('u1');
    uploads.delete('u2');
    expect(blobs.collect(1001)).toBe(2);
    expect(db.prepare('SELECT COUNT(*) AS n FROM user_blobs').get()).toEqual({ n: 0 });
  });
});
