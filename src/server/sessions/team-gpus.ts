import { KhdError } from '../../protocol/errors.js';
import type { UserRow } from '../store/accounts.js';
import type { SessionRow } from '../store/sessions.js';

export interface Admission {
  /** GPUs the executor may give one session: this server's, or the cluster's largest node's. */
  total: number;
  onCluster: boolean;
  /** GPUs one team's training sessions may hold at once (`--max-gpus-per-team`); none: no limit. */
  maxPerTeam?: number;
  /** Whether one of the team's submits is being evaluated (training waits for it). */
  teamEvaluating: boolean;
}

/** The GPUs a new training session of `user` gets, if the server and its team may give them; else why not. */
export function admittedGpus(user: UserRow, asked: number | undefined, a: Admission): number {
  const gpus = asked ?? (a.total > 0 ? 1 : 0);
  if (gpus > a.total) {
    const where = a.onCluster ? "the cluster's largest node has" : 'this server has';
    throw new KhdError('KHD_TOO_MANY_GPUS', `the session asks for ${gpus} GPU(s) but ${where} ${a.total}: use -g ${a.total} or fewer`);
  }
  const max = a.maxPerTeam;
  if (max !== undefined && gpus > max) {
    throw new KhdError('KHD_TOO_MANY_GPUS', `Your maximum available GPU is ${max}: team ${user.team} may use ${max} GPU(s) at once; use -g ${max} or fewer`);
  }
  if (a.teamEvaluating) {
    throw new KhdError('KHD_SUBMIT_BUSY', `a submit of team ${user.team} is being evaluated: start training again when it is done (khd dataset submits shows it)`);
  }
  return gpus;
}

/** GPUs each team's training sessions hold among `held` (running, being started, or submitted to the scheduler). */
export function teamGpus(held: Iterable<SessionRow>): Map<number, number> {
  const inUse = new Map<number, number>();
  for (const r of held) {
    if (r.type === 'normal') inUse.set(r.teamId, (inUse.get(r.teamId) ?? 0) + r.gpus);
  }
  return inUse;
}

/** Whether starting `s` would take its team past `max` GPUs (submits are not held by the limit). */
export function overTeamLimit(s: SessionRow, inUse: Map<number, number>, max: number | undefined): boolean {
  return max !== undefined && s.type === 'normal' && s.gpus > 0 && (inUse.get(s.teamId) ?? 0) + s.gpus > max;
}
