import type { Db } from './db.js';
import { formatSessionName, NO_DATASET } from '../../protocol/session-name.js';
import type { SessionInfo, SessionStatus, SessionType } from '../../protocol/types.js';

export interface SessionRow extends SessionInfo {
  id: number;
  userId: number;
  /** The owner's team: a team's sessions are shared within it, as NSML's team accounts were. */
  teamId: number;
  datasetId: number | null;
  uploadId: string;
  gpuIds: number[];
  /** The scheduler's job running it (a Slurm job id and its uid), followed again after a restart. */
  job: string | null;
}

export type NewSession = Pick<SessionInfo, 'user' | 'dataset' | 'type' | 'entry' | 'args' | 'gpus' | 'cpus' | 'memory' | 'shmSize' | 'memo' | 'env'> & {
  forkOf?: SessionInfo['forkOf'];
  userId: number;
  datasetId: number | null;
  uploadId: string;
};

/** How a session ended: the executor's result record, plus a reason a participant can read. */
export interface SessionEnd {
  status: Extract<SessionStatus, 'Exited' | 'Failed' | 'Stopped'>;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stopped: boolean;
  reason: string | null;
  endedAt: number;
}

const SELECT = `SELECT s.*, u.name AS user_name, u.team_id AS team_id FROM sessions s JOIN users u ON u.id = s.user_id`;

type Raw = Record<string, unknown> & { user_name: string; dataset_key: string };

const iso = (v: unknown) => (typeof v === 'number' ? new Date(v).toISOString() : null);

function toSession(r: Raw): SessionRow {
  const dataset = r.dataset_key === NO_DATASET ? null : r.dataset_key;
  return {
    id: r.id as number,
    userId: r.user_id as number,
    teamId: r.team_id as number,
    datasetId: (r.dataset_id as number | null) ?? null,
    uploadId: r.upload_id as string,
    gpuIds: r.gpu_ids ? (JSON.parse(r.gpu_ids as string) as number[]) : [],
    job: (r.job as string | null) ?? null,
    forkOf: r.fork_of ? (JSON.parse(r.fork_of as string) as SessionInfo['forkOf']) : null,
    name: formatSessionName({ user: r.user_name, dataset: r.dataset_key, number: r.number as number }),
    user: r.user_name,
    dataset,
    number: r.number as number,
    type: r.type as SessionType,
    status: r.status as SessionStatus,
    exitCode: (r.exit_code as number | null) ?? null,
    signal: (r.signal as string | null) ?? null,
    reason: (r.reason as string | null) ?? null,
    entry: r.entry as string,
    args: JSON.parse(r.args as string) as string[],
    gpus: r.gpus as number,
    cpus: r.cpus as number,
    memory: r.memory as number,
    shmSize: r.shm_size as number,
    memo: r.memo as string,
    env: (r.env as string | null) ?? null,
    createdAt: iso(r.created_at)!,
    startedAt: iso(r.started_at),
    endedAt: iso(r.ended_at),
    summary: null,
    models: 0,
    modelsSize: 0,
  };
}

export interface ListFilter {
  userId?: number;
  teamId?: number;
  dataset?: string;
  activeOnly?: boolean;
  /** Text the name (USER/DATASET/N) or the memo holds, in any case. */
  search?: string;
  limit?: number;
}

export class SessionStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  /** Inserts a session with the user's next number for that dataset; numbers are never reused. */
  insert(s: NewSession): SessionRow {
    return this.db.transaction(() => {
      const key = s.dataset ?? NO_DATASET;
      this.db
        .prepare(
          `INSERT INTO session_counters (user_id, dataset, last_number) VALUES (?, ?, 1)
           ON CONFLICT (user_id, dataset) DO UPDATE SET last_number = last_number + 1`,
        )
        .run(s.userId, key);
      const { n } = this.db
        .prepare('SELECT last_number AS n FROM session_counters WHERE user_id = ? AND dataset = ?')
        .get(s.userId, key) as { n: number };
      const info = this.db
        .prepare(
          `INSERT INTO sessions (user_id, dataset_id, dataset_key, number, type, status, upload_id, entry, args,
            gpus, cpus, memory, shm_size, memo, env, fork_of, created_at)
           VALUES (?, ?, ?, ?, ?, 'Queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(s.userId, s.datasetId, key, n, s.type, s.uploadId, s.entry, JSON.stringify(s.args), s.gpus, s.cpus,
          s.memory, s.shmSize, s.memo, s.env, s.forkOf ? JSON.stringify(s.forkOf) : null, this.now());
      return this.byId(Number(info.lastInsertRowid))!;
    })();
  }

  byId(id: number): SessionRow | undefined {
    const r = this.db.prepare(`${SELECT} WHERE s.id = ?`).get(id) as Raw | undefined;
    return r && toSession(r);
  }

  byName(user: string, dataset: string, number: number): SessionRow | undefined {
    const r = this.db
      .prepare(`${SELECT} WHERE u.name = ? AND s.dataset_key = ? AND s.number = ?`)
      .get(user, dataset, number) as Raw | undefined;
    return r && toSession(r);
  }

  byUpload(uploadId: string): SessionRow | undefined {
    const r = this.db.prepare(`${SELECT} WHERE s.upload_id = ?`).get(uploadId) as Raw | undefined;
    return r && toSession(r);
  }

  list(filter: ListFilter): SessionRow[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.userId !== undefined) (where.push('s.user_id = ?'), params.push(filter.userId));
    if (filter.teamId !== undefined) (where.push('u.team_id = ?'), params.push(filter.teamId));
    if (filter.dataset !== undefined) (where.push('s.dataset_key = ?'), params.push(filter.dataset));
    if (filter.activeOnly) where.push("s.status IN ('Queued', 'Running')");
    if (filter.search) {
      const like = `%${filter.search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push("(lower(u.name || '/' || s.dataset_key || '/' || s.number) LIKE ? ESCAPE '\\' OR lower(s.memo) LIKE ? ESCAPE '\\')");
      params.push(like, like);
    }
    const sql = `${SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY s.id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...params, filter.limit ?? -1) as Raw[]).map(toSession);
  }

  withStatus(status: SessionStatus): SessionRow[] {
    return (this.db.prepare(`${SELECT} WHERE s.status = ? ORDER BY s.id`).all(status) as Raw[]).map(toSession);
  }

  markRunning(id: number, gpuIds: number[]): void {
    this.db
      .prepare("UPDATE sessions SET status = 'Running', gpu_ids = ?, started_at = ? WHERE id = ? AND status = 'Queued'")
      .run(JSON.stringify(gpuIds), this.now(), id);
  }

  setJob(id: number, job: string): void {
    this.db.prepare('UPDATE sessions SET job = ? WHERE id = ?').run(job, id);
  }

  /** Records the end once; a second end (a stop racing an exit) changes nothing. */
  markEnded(id: number, end: SessionEnd): boolean {
    return (
      this.db
        .prepare(
          `UPDATE sessions SET status = ?, exit_code = ?, signal = ?, timed_out = ?, stopped = ?, reason = ?, ended_at = ?
           WHERE id = ? AND status IN ('Queued', 'Running')`,
        )
        .run(end.status, end.exitCode, end.signal, end.timedOut ? 1 : 0, end.stopped ? 1 : 0, end.reason, end.endedAt, id)
        .changes === 1
    );
  }

  setMemo(id: number, memo: string): void {
    this.db.prepare('UPDATE sessions SET memo = ? WHERE id = ?').run(memo, id);
  }

  delete(id: number): void {
    this.db.prepare('DELETE FROM sessions WHERE id = ?').run(id);
  }
}
