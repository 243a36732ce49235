import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KhdError } from '../../protocol/errors.js';
import { didYouMean } from '../../protocol/suggest.js';
import { parseSessionName } from '../../protocol/session-name.js';
import type { SubmitRequest } from '../../protocol/types.js';
import type { DataDir } from '../data-dir.js';
import type { SessionService } from '../sessions/session-service.js';
import type { AccountStore, UserRow } from '../store/accounts.js';
import type { DatasetRow, DatasetStore } from '../store/datasets.js';
import type { SessionRow, SessionStore } from '../store/sessions.js';

export interface RuleDeps {
  sessions: SessionStore;
  sessionService: SessionService;
  datasets: DatasetStore;
  accounts: AccountStore;
  dataDir: DataDir;
  now: () => number;
}

/**
 * Every rule that can be checked before anything runs, each with its own sentence (the
 * checkpoint itself is checked as it is copied: checkpoint-copy.ts).
 */
export function checkSubmit(d: RuleDeps, user: UserRow, req: SubmitRequest): { source: SessionRow; dataset: DatasetRow } {
  const name = parseSessionName(req.session);
  const source = d.sessions.byName(name.user, name.dataset, name.number);
  const owner = source ? d.accounts.userByName(source.user) : undefined;
  if (!source || !owner || owner.teamId !== user.teamId) {
    const mine = d.sessions.list({ teamId: user.teamId, limit: 5000 }).map((s) => s.name);
    throw new KhdError('KHD_SESSION_NOT_FOUND', `session ${req.session} does not exist${didYouMean(req.session, mine, 1) || ': see khd ps -a'}`);
  }
  if (source.type !== 'normal') {
    throw new KhdError('KHD_SUBMIT_INVALID', `${source.name} is a ${source.type} session: submit a checkpoint of a training session`);
  }
  const dataset = source.datasetId === null ? undefined : d.datasets.byId(source.datasetId);
  if (!dataset) throw new KhdError('KHD_SUBMIT_INVALID', `${source.name} ran without a dataset: there is nothing to evaluate it on`);
  if (!req.test && !dataset.leaderboard) {
    throw new KhdError('KHD_SUBMIT_INVALID', `dataset ${dataset.name} keeps no leaderboard: only test submits (-t) are possible`);
  }
  if (req.test && !existsSync(join(d.dataDir.datasetPrivate(dataset.name), 'test_submit'))) {
    throw new KhdError('KHD_SUBMIT_INVALID', `dataset ${dataset.name} has no test_submit/: test submits are not possible on it`);
  }
  const now = d.now();
  if (dataset.submitFrom && now < Date.parse(dataset.submitFrom)) {
    throw new KhdError('KHD_SUBMIT_CLOSED', `submits to ${dataset.name} open at ${dataset.submitFrom}`);
  }
  if (dataset.submitUntil && now > Date.parse(dataset.submitUntil)) {
    throw new KhdError('KHD_SUBMIT_CLOSED', `submits to ${dataset.name} closed at ${dataset.submitUntil}`);
  }
  return { source, dataset };
}

export function failureClass(session: SessionRow, paused: boolean, loaded: boolean): string {
  const code = session.exitCode === null ? (session.reason ?? session.status) : `exit code ${session.exitCode}`;
  if (session.status === 'Stopped') return 'Stopped: the submit session was stopped';
  if (session.status === 'Failed' && session.exitCode === null) return `PlatformError: ${session.reason ?? 'the session failed'}`;
  if (!paused) {
    return session.exitCode === 0
      ? 'NoPause: the code ended without calling nsml.paused(); a submit runs it with --mode test --pause 1'
      : `CrashBeforePause: the code failed before reaching nsml.paused() (${code})`;
  }
  if (!loaded) return `LoadError: loading the checkpoint failed (${code})`;
  return `InferenceError: inference failed or wrote no predictions (${code})`;
}

export function formatInterval(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`;
}
