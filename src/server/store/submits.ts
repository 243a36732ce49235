import type { Db } from './db.js';
import type { SubmitInfo, SubmitStage } from '../../protocol/types.js';

export interface SubmitRow extends SubmitInfo {
  userId: number;
  teamId: number;
  datasetId: number;
  sessionId: number | null;
}

interface Raw {
  id: number;
  session_id: number | null;
  source_name: string;
  checkpoint: string;
  user_id: number;
  team_id: number;
  dataset_id: number;
  test: number;
  status: SubmitInfo['status'];
  stage: SubmitStage;
  score: number | null;
  error: string | null;
  load_seconds: number | null;
  infer_seconds: number | null;
  created_at: number;
  ended_at: number | null;
  note: string | null;
  preview: string | null;
  team: string;
  user: string;
  dataset: string;
  session_name: string | null;
}

const SELECT = `SELECT s.*, t.name AS team, u.name AS user, d.name AS dataset,
  (SELECT uu.name || '/' || ss.dataset_key || '/' || ss.number FROM sessions ss JOIN users uu ON uu.id = ss.user_id
   WHERE ss.id = s.session_id) AS session_name
  FROM submits s JOIN teams t ON t.id = s.team_id JOIN users u ON u.id = s.user_id JOIN datasets d ON d.id = s.dataset_id`;

function toSubmit(r: Raw): SubmitRow {
  return {
    id: r.id,
    sessionId: r.session_id,
    userId: r.user_id,
    teamId: r.team_id,
    datasetId: r.dataset_id,
    session: r.session_name,
    source: r.source_name,
    checkpoint: r.checkpoint,
    user: r.user,
    team: r.team,
    dataset: r.dataset,
    test: r.test === 1,
    status: r.status,
    stage: r.stage,
    score: r.score,
    error: r.error,
    loadSeconds: r.load_seconds,
    inferSeconds: r.infer_seconds,
    createdAt: new Date(r.created_at).toISOString(),
    endedAt: r.ended_at === null ? null : new Date(r.ended_at).toISOString(),
    note: r.note,
    preview: r.preview === null ? null : (JSON.parse(r.preview) as string[]),
  };
}

export interface NewSubmit {
  sourceName: string;
  checkpoint: string;
  userId: number;
  teamId: number;
  datasetId: number;
  test: boolean;
}

/** Why a submit may not start now; undefined when it may. */
export type SubmitRefusal = { kind: 'evaluating' } | { kind: 'interval'; nextAt: number };

export class SubmitStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  byId(id: number): SubmitRow | undefined {
    const r = this.db.prepare(`${SELECT} WHERE s.id = ?`).get(id) as Raw | undefined;
    return r && toSubmit(r);
  }

  bySession(sessionId: number): SubmitRow | undefined {
    const r = this.db.prepare(`${SELECT} WHERE s.session_id = ?`).get(sessionId) as Raw | undefined;
    return r && toSubmit(r);
  }

  /**
   * Checks the team's rules and reserves the slot in one write transaction, so two concurrent
   * submits cannot both pass: while one is evaluating, the team's next is refused; a counted
   * (real, scored) submit within the interval refuses the next real one until it has passed.
   */
  reserve(s: NewSubmit, intervalMs: number): { id: number } | SubmitRefusal {
    return this.db.transaction((): { id: number } | SubmitRefusal => {
      const busy = this.db
        .prepare("SELECT 1 FROM submits WHERE team_id = ? AND status = 'evaluating' LIMIT 1")
        .get(s.teamId);
      if (busy) return { kind: 'evaluating' };
      if (!s.test) {
        const last = this.db
          .prepare(
            `SELECT MAX(created_at) AS at FROM submits
             WHERE team_id = ? AND dataset_id = ? AND test = 0 AND status = 'scored'`,
          )
          .get(s.teamId, s.datasetId) as { at: number | null };
        if (last.at !== null && last.at + intervalMs > this.now()) return { kind: 'interval', nextAt: last.at + intervalMs };
      }
      const info = this.db
        .prepare(
          `INSERT INTO submits (source_name, checkpoint, user_id, team_id, dataset_id, test, status, stage, created_at)
           VALUES (?, ?, ?, ?, ?, ?, 'evaluating', 'queued', ?)`,
        )
        .run(s.sourceName, s.checkpoint, s.userId, s.teamId, s.datasetId, s.test ? 1 : 0, this.now());
      return { id: Number(info.lastInsertRowid) };
    }).immediate();
  }

  setSession(id: number, sessionId: number): void {
    this.db.prepare('UPDATE submits SET session_id = ? WHERE id = ?').run(sessionId, id);
  }

  setStage(id: number, stage: SubmitStage, fields: { loadSeconds?: number; inferSeconds?: number } = {}): void {
    this.db
      .prepare(
        `UPDATE submits SET stage = ?, load_seconds = COALESCE(?, load_seconds), infer_seconds = COALESCE(?, infer_seconds)
         WHERE id = ? AND status = 'evaluating'`,
      )
      .run(stage, fields.loadSeconds ?? null, fields.inferSeconds ?? null, id);
  }

  /**
   * Records the outcome once (false when it was already recorded): scored, failed, or (a test
   * submit on a sample without labels) run but not scored, with why and the first predictions.
   */
  finish(id: number, outcome: { score: number } | { error: string } | { unscored: string; preview: string[] }): boolean {
    const [status, stage, score, error, note, preview] =
      'score' in outcome ? ['scored', 'done', outcome.score, null, null, null]
      : 'error' in outcome ? ['failed', 'failed', null, outcome.error, null, null]
      : ['unscored', 'done', null, null, outcome.unscored, JSON.stringify(outcome.preview)];
    return (
      this.db
        .prepare(
          `UPDATE submits SET status = ?, stage = ?, score = ?, error = ?, note = ?, preview = ?, ended_at = ?
           WHERE id = ? AND status = 'evaluating'`,
        )
        .run(status, stage, score, error, note, preview, this.now(), id).changes === 1
    );
  }

  teamEvaluating(teamId: number): boolean {
    return this.db.prepare("SELECT 1 FROM submits WHERE team_id = ? AND status = 'evaluating' LIMIT 1").get(teamId) !== undefined;
  }

  evaluating(): SubmitRow[] {
    return (this.db.prepare(`${SELECT} WHERE s.status = 'evaluating'`).all() as Raw[]).map(toSubmit);
  }

  forTeam(teamId: number, datasetId: number): SubmitRow[] {
    return (this.db.prepare(`${SELECT} WHERE s.team_id = ? AND s.dataset_id = ? ORDER BY s.id DESC`).all(teamId, datasetId) as Raw[]).map(toSubmit);
  }

  /** Every counted submit of a dataset, for the leaderboard. */
  counted(datasetId: number): SubmitRow[] {
    return (
      this.db.prepare(`${SELECT} WHERE s.dataset_id = ? AND s.test = 0 AND s.status = 'scored' ORDER BY s.id`).all(datasetId) as Raw[]
    ).map(toSubmit);
  }
}
