import type { Db } from './db.js';
import { KhdError } from '../../protocol/errors.js';
import type { DatasetInfo, DatasetOptions } from '../../protocol/types.js';

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
}

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
  };
}

export class DatasetStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  byName(name: string): DatasetRow | undefined {
    const row = this.db.prepare('SELECT * FROM datasets WHERE name = ?').get(name) as RawDataset | undefined;
    return row && toDataset(row);
  }

  /** The dataset as `user` may see it: a private one is an admin's; a hidden one reads as missing. */
  visible(name: string, user: { admin: boolean }): DatasetRow {
    const dataset = this.byName(name);
    if (!dataset || (dataset.private && !user.admin)) {
      throw new KhdError('KHD_DATASET_NOT_FOUND', `dataset '${name}' does not exist: see khd dataset ls`);
    }
    return dataset;
  }

  byId(id: number): DatasetRow | undefined {
    const row = this.db.prepare('SELECT * FROM datasets WHERE id = ?').get(id) as RawDataset | undefined;
    return row && toDataset(row);
  }

  list(includePrivate: boolean): DatasetRow[] {
    const rows = this.db
      .prepare(`SELECT * FROM datasets ${includePrivate ? '' : 'WHERE private = 0'} ORDER BY name`)
      .all() as RawDataset[];
    return rows.map(toDataset);
  }

  insert(name: string, options: DatasetOptions, size: number, files: number): DatasetRow {
    const info = this.db
      .prepare(
        `INSERT INTO datasets (name, description, leaderboard, metric, sort_order, model_size_limit,
          submit_interval_ms, private, size_bytes, file_count, created_at, paused_timeout_ms, infer_timeout_ms,
          submit_from, submit_until, labels, model_pull)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
      );
    return this.byId(Number(info.lastInsertRowid))!;
  }
}
