/**
 * Numbered schema migrations. Append only: never edit a migration that has shipped.
 * The applied count lives in SQLite's `user_version`.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: accounts, datasets, uploads, sessions
  `
  CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    team_id INTEGER NOT NULL REFERENCES teams(id),
    is_admin INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    leaderboard INTEGER NOT NULL DEFAULT 0,
    metric TEXT NOT NULL DEFAULT 'accuracy',
    sort_order TEXT NOT NULL DEFAULT 'desc',
    model_size_limit INTEGER NOT NULL,
    submit_interval_ms INTEGER NOT NULL,
    private INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    manifest TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE session_counters (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    dataset TEXT NOT NULL,
    last_number INTEGER NOT NULL,
    PRIMARY KEY (user_id, dataset)
  );
  CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    dataset_id INTEGER REFERENCES datasets(id),
    dataset_key TEXT NOT NULL,
    number INTEGER NOT NULL,
    type TEXT NOT NULL DEFAULT 'normal',
    status TEXT NOT NULL,
    upload_id TEXT NOT NULL REFERENCES uploads(id),
    entry TEXT NOT NULL,
    args TEXT NOT NULL,
    gpus INTEGER NOT NULL,
    gpu_ids TEXT,
    cpus INTEGER NOT NULL,
    memory INTEGER NOT NULL,
    shm_size INTEGER NOT NULL,
    memo TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    signal TEXT,
    timed_out INTEGER NOT NULL DEFAULT 0,
    stopped INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    UNIQUE (user_id, dataset_key, number)
  );
  CREATE INDEX sessions_status ON sessions(status);
  `,
  // 2: submissions, their rules, and the leaderboard
  `
  ALTER TABLE datasets ADD COLUMN paused_timeout_ms INTEGER NOT NULL DEFAULT 600000;
  ALTER TABLE datasets ADD COLUMN infer_timeout_ms INTEGER NOT NULL DEFAULT 3600000;
  ALTER TABLE datasets ADD COLUMN submit_from INTEGER;
  ALTER TABLE datasets ADD COLUMN submit_until INTEGER;
  CREATE TABLE submits (
    id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
    source_name TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id INTEGER NOT NULL REFERENCES teams(id),
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    test INTEGER NOT NULL,
    status TEXT NOT NULL,
    stage TEXT NOT NULL,
    score REAL,
    error TEXT,
    load_seconds REAL,
    infer_seconds REAL,
    created_at INTEGER NOT NULL,
    ended_at INTEGER
  );
  CREATE INDEX submits_team ON submits(team_id, dataset_id, status);
  `,
  // 3: content-addressed uploads: each content stored once, owned by the users who sent it
  `
  CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE user_blobs (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    PRIMARY KEY (user_id, sha256)
  );
  ALTER TABLE uploads ADD COLUMN tree TEXT;
  CREATE INDEX uploads_tree ON uploads(tree);
  `,
  // 4: contents no upload names are collected: which uploads name a content, found by index
  `
  CREATE TABLE upload_contents (
    upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (upload_id, sha256)
  ) WITHOUT ROWID;
  INSERT OR IGNORE INTO upload_contents
    SELECT u.id, json_extract(f.value, '$.sha256') FROM uploads u, json_each(u.manifest) f;
  CREATE INDEX upload_contents_sha256 ON upload_contents(sha256);
  CREATE INDEX user_blobs_sha256 ON user_blobs(sha256);
  CREATE INDEX blobs_created ON blobs(created_at);
  `,
  // 5: label names of a dataset; submits that ran but could not be scored (a sample without labels)
  `
  ALTER TABLE datasets ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE submits ADD COLUMN note TEXT;
  ALTER TABLE submits ADD COLUMN preview TEXT;
  `,
  // 6: environments (the Python stacks sessions run on), which one each session chose, and the
  // system packages projects asked for that the server lacks
  `
  CREATE TABLE environments (
    name TEXT PRIMARY KEY,
    python TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]',
    is_default INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '',
    info TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
  );
  ALTER TABLE sessions ADD COLUMN env TEXT;
  CREATE TABLE missing_packages (
    name TEXT PRIMARY KEY,
    sessions INTEGER NOT NULL,
    last_at INTEGER NOT NULL
  );
  `,
  // 7: the scheduler's job of a session (Slurm), which outlives the server and is followed again at start
  `
  ALTER TABLE sessions ADD COLUMN job TEXT;
  `,
  // 8: the session and checkpoint a fork continues from (khd fork)
  `
  ALTER TABLE sessions ADD COLUMN fork_of TEXT;
  `,
  // 9: whether a dataset lets participants take checkpoints and sessions' files out (khd model pull, download)
  `
  ALTER TABLE datasets ADD COLUMN model_pull INTEGER NOT NULL DEFAULT 1;
  `,
  // 10: who pushed a dataset, and what admins changed in it since (khd dataset change)
  `
  ALTER TABLE datasets ADD COLUMN author TEXT NOT NULL DEFAULT '';
  CREATE TABLE dataset_changes (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    by_user TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    at INTEGER NOT NULL
  );
  CREATE INDEX dataset_changes_dataset ON dataset_changes(dataset_id, id);
  `,
  // 11: no index of upload_contents by content: keeping it cost ~14 µs per row (70 ms for a
  // 5,000-file upload, on the event loop, for every upload and every re-run); the sweep that
  // needed it reads the table once instead (BlobStore.collect)
  `
  DROP INDEX upload_contents_sha256;
  `,
  // 12: contents and their owners in tables keyed by their primary key alone (WITHOUT ROWID),
  // and no index of owners by content: recording 5,000 contents took 150-200 ms of the server's
  // main thread, 85-105 ms so (the sweep deletes owners in one pass instead, BlobStore.collect)
  `
  CREATE TABLE blobs_by_key (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO blobs_by_key SELECT sha256, size, created_at FROM blobs;
  CREATE TABLE user_blobs_by_key (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL REFERENCES blobs_by_key(sha256),
    PRIMARY KEY (user_id, sha256)
  ) WITHOUT ROWID;
  INSERT INTO user_blobs_by_key SELECT user_id, sha256 FROM user_blobs;
  DROP TABLE user_blobs;
  DROP TABLE blobs;
  ALTER TABLE blobs_by_key RENAME TO blobs;
  ALTER TABLE user_blobs_by_key RENAME TO user_blobs;
  CREATE INDEX blobs_created ON blobs(created_at);
  `,
  // 13: the sizes of each user's contents: a file of a size none of them has cannot be one of
  // them, so a cold hash cache sends it unhashed, in one pass (UploadService.create); and the
  // hashes of such files whose content arrived in a body that then failed (uploads.arrived)
  `
  CREATE TABLE user_sizes (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    PRIMARY KEY (user_id, size)
  ) WITHOUT ROWID;
  INSERT OR IGNORE INTO user_sizes SELECT ub.user_id, b.size FROM user_blobs ub JOIN blobs b ON b.sha256 = ub.sha256;
  ALTER TABLE uploads ADD COLUMN arrived TEXT;
  `,
];
