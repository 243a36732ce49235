import type { Db } from './db.js';
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
}

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
          submit_interval_ms, private, size_bytes, file_count, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
      );
    return this.byId(Number(info.lastInsertRowid))!;
  }
}
