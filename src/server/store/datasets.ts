import type { Db } from './db.js';
import { KhdError } from '../../protocol/errors.js';
import { didYouMean } from '../../protocol/suggest.js';
import type { DatasetChange, DatasetChangeRecord, DatasetInfo, DatasetOptions } from '../../protocol/types.js';

export interface DatasetRow extends DatasetInfo {
  id: number;
}

interface RawDataset {
  id: number;
  name: string;
  description: string;
  leaderboard: number;
  metric: DatasetOptions['metric'];
  sort_order: DatasetOptions['order'];
  model_size_limit: number;
  submit_interval_ms: number;
  private: number;
  size_bytes: number;
  file_count: number;
  created_at: number;
  paused_timeout_ms: number;
  infer_timeout_ms: number;
  submit_from: number | null;
  submit_until: number | null;
  labels: string;
  model_pull: number;
  author: string;
  modified_at: number | null;
}

/** Columns of `datasets` that `khd dataset change` may set, by option. */
const CHANGEABLE: Record<keyof DatasetChange, { column: string; toDb: (v: never) => unknown }> = {
  description: { column: 'description', toDb: (v: string) => v },
  metric: { column: 'metric', toDb: (v: string) => v },
  order: { column: 'sort_order', toDb: (v: string) => v },
  modelSizeLimit: { column: 'model_size_limit', toDb: (v: number) => v },
  submitIntervalMs: { column: 'submit_interval_ms', toDb: (v: number) => v },
  pausedTimeoutMs: { column: 'paused_timeout_ms', toDb: (v: number) => v },
  inferTimeoutMs: { column: 'infer_timeout_ms', toDb: (v: number) => v },
  submitFrom: { column: 'submit_from', toDb: (v: string | null) => msOrNull(v) },
  submitUntil: { column: 'submit_until', toDb: (v: string | null) => msOrNull(v) },
  private: { column: 'private', toDb: (v: boolean) => (v ? 1 : 0) },
  modelPull: { column: 'model_pull', toDb: (v: boolean) => (v ? 1 : 0) },
};

const SELECT = 'SELECT d.*, (SELECT MAX(at) FROM dataset_changes c WHERE c.dataset_id = d.id) AS modified_at FROM datasets d'

const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const msOrNull = (iso: string | null) => (iso === null ? null : Date.parse(iso));

function toDataset(r: RawDataset): DatasetRow {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    leaderboard: r.leaderboard === 1,
    metric: r.metric,
    order: r.sort_order,
    modelSizeLimit: r.model_size_limit,
    submitIntervalMs: r.submit_interval_ms,
    private: r.private === 1,
    size: r.size_bytes,
    files: r.file_count,
    createdAt: new Date(r.created_at).toISOString(),
    pausedTimeoutMs: r.paused_timeout_ms,
    inferTimeoutMs: r.infer_timeout_ms,
    submitFrom: isoOrNull(r.submit_from),
    submitUntil: isoOrNull(r.submit_until),
    labels: JSON.parse(r.labels) as string[],
    modelPull: r.model_pull === 1,
    author: r.author,
    modifiedAt: new Date(Math.max(r.created_at, r.modified_at ?? 0)).toISOString(),
  };
}

export class DatasetStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  byName(name: string): DatasetRow | undefined {
    const row = this.db.prepare(`${SELECT} WHERE d.name = ?`).get(name) as RawDataset | undefined;
    return row && toDataset(row);
  }

  /** The dataset as `user` may see it: a private one is an admin's; a hidden one reads as missing. */
  visible(name: string, user: { admin: boolean }): DatasetRow {
    const dataset = this.byName(name);
    if (!dataset || (dataset.private && !user.admin)) {
      const hint = didYouMean(name, this.list(user.admin).map((d) => d.name));
      throw new KhdError('KHD_DATASET_NOT_FOUND', `dataset '${name}' does not exist${hint || ': see khd dataset ls'}`);
    }
    return dataset;
  }

  byId(id: number): DatasetRow | undefined {
    const row = this.db.prepare(`${SELECT} WHERE d.id = ?`).get(id) as RawDataset | undefined;
    return row && toDataset(row);
  }

  list(includePrivate: boolean): DatasetRow[] {
    const rows = this.db
      .prepare(`${SELECT} ${includePrivate ? '' : 'WHERE d.private = 0'} ORDER BY d.name`)
      .all() as RawDataset[];
    return rows.map(toDataset);
  }

  /** Sets what `change` names, each change logged with who made it and the value before, in one transaction. */
  update(id: number, change: DatasetChange, by: string): DatasetChangeRecord[] {
    return this.db.transaction(() => {
      const before = this.byId(id)!;
      const made: DatasetChangeRecord[] = [];
      const at = this.now();
      for (const [field, value] of Object.entries(change) as [keyof DatasetChange, never][]) {
        if (value === undefined || before[field] === value) continue;
        const { column, toDb } = CHANGEABLE[field];
        this.db.prepare(`UPDATE datasets SET ${column} = ? WHERE id = ?`).run(toDb(value), id);
        this.db
          .prepare('INSERT INTO dataset_changes (dataset_id, by_user, field, old_value, new_value, at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(id, by, field, JSON.stringify(before[field]), JSON.stringify(value), at);
        made.push({ by, field, old: before[field], new: value, at: new Date(at).toISOString() });
      }
      return made;
    })();
  }

  /** How many sessions and submits name the dataset (each keeps it). */
  references(id: number): { sessions: number; submits: number } {
    const count = (table: string) => (this.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE dataset_id = ?`).get(id) as { n: number }).n;
    return { sessions: count('sessions'), submits: count('submits') };
  }

  /** Removes a dataset nothing names any more, with its change log. */
  delete(id: number): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM dataset_changes WHERE dataset_id = ?').run(id);
      this.db.prepare('DELETE FROM datasets WHERE id = ?').run(id);
    })();
  }

  /** Every change made to the dataset, oldest first. */
  changes(id: number): DatasetChangeRecord[] {
    const rows = this.db.prepare('SELECT * FROM dataset_changes WHERE dataset_id = ? ORDER BY id').all(id) as {
      by_user: string; field: keyof DatasetChange; old_value: string | null; new_value: string | null; at: number;
    }[];
    return rows.map((r) => ({ by: r.by_user, field: r.field, old: r.old_value === null ? null : JSON.parse(r.old_value), new: r.new_value === null ? null : JSON.parse(r.new_value), at: new Date(r.at).toISOString() }));
  }

  insert(name: string, options: DatasetOptions, size: number, files: number, author = ''): DatasetRow {
    const info = this.db
      .prepare(
        `INSERT INTO datasets (name, description, leaderboard, metric, sort_order, model_size_limit,
          submit_interval_ms, private, size_bytes, file_count, created_at, paused_timeout_ms, infer_timeout_ms,
          submit_from, submit_until, labels, model_pull, author)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        name,
        options.description,
        options.leaderboard ? 1 : 0,
        options.metric,
        options.order,
        options.modelSizeLimit,
        options.submitIntervalMs,
        options.private ? 1 : 0,
        size,
        files,
        this.now(),
        options.pausedTimeoutMs,
        options.inferTimeoutMs,
        msOrNull(options.submitFrom),
        msOrNull(options.submitUntil),
        JSON.stringify(options.labels),
        options.modelPull ? 1 : 0,
        author,
      );
    return this.byId(Number(info.lastInsertRowid))!;
  }
}
