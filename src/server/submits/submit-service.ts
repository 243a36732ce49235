import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KhdError } from '../../protocol/errors.js';
import { formatSize } from '../../protocol/sizes.js';
import { isFinished, type SubmitInfo, type SubmitRequest } from '../../protocol/types.js';
import { STAGED_CHECKPOINT_PREFIX, type DataDir } from '../data-dir.js';
import { labelNames } from '../datasets/dataset-layout.js';
import { NoLabelsError, PredictionError, type Scorer } from '../scoring/scorer.js';
import { copyOut, UntrustedFileError } from '../untrusted/session-files.js';
import { copyCheckpoint } from './checkpoint-copy.js';
import { checkSubmit, failureClass, formatInterval } from './submit-rules.js';
import type { SessionEvents } from '../sessions/session-events.js';
import type { LaunchPlan } from '../sessions/launch-plans.js';
import type { SessionService } from '../sessions/session-service.js';
import type { AccountStore, UserRow } from '../store/accounts.js';
import type { DatasetStore } from '../store/datasets.js';
import type { SessionRow, SessionStore } from '../store/sessions.js';
import type { SubmitRow, SubmitStore } from '../store/submits.js';

export const SUBMIT_POLL_MS = 250;
const SANDBOX_SUBMIT = '/khd/submit';
const PREDICTIONS_FILE = 'predictions';
/** The most of a submit's predictions the server reads: one line per test item, with room to spare. */
const MAX_PREDICTIONS_BYTES = 256 * 1024 ** 2;

function predictionsRefused(err: UntrustedFileError): string {
  const what =
    err.why === 'link' ? 'is a symbolic link' : err.why === 'too-large' ? `is over ${formatSize(MAX_PREDICTIONS_BYTES)}` : 'is not a regular file';
  return `WrongPredictions: the predictions file ${what}: inference must write its predictions into it, as a regular file`;
}

const PREVIEW_LINES = 5;
const PREVIEW_LINE_CHARS = 200;

/** The first lines of the server's copy of the predictions, each cut short: what an unscored test submit shows. */
async function previewOf(file: string): Promise<string[]> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(PREVIEW_LINES * (PREVIEW_LINE_CHARS + 1) * 4);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).toString('utf8').split('\n').slice(0, PREVIEW_LINES)
      .filter((line, i, all) => line !== '' || i < all.length - 1).map((line) => line.slice(0, PREVIEW_LINE_CHARS));
  } finally {
    await handle.close();
  }
}

export interface SubmitServiceDeps {
  submits: SubmitStore;
  sessions: SessionStore;
  sessionService: SessionService;
  datasets: DatasetStore;
  accounts: AccountStore;
  events: SessionEvents;
  scorer: Scorer;
  dataDir: DataDir;
  now: () => number;
  warn: (message: string) => void;
  pollMs?: number;
}

/**
 * `khd submit`: a submit session runs the source session's code with `--mode test --pause 1`;
 * nsml.paused() loads the checkpoint and writes predictions; a separate scorer scores them.
 * The rules are checked before anything runs, and the team's slot is reserved atomically.
 */
export class SubmitService {
  private readonly watchers = new Map<number, NodeJS.Timeout>();
  /** Work on the store under way: outcomes being decided (predictions copied, scored), watch ticks. */
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly d: SubmitServiceDeps) {
    d.sessionService.submitPlanner = (s) => this.plan(s);
    d.sessionService.onEnded((s) => {
      if (s.type !== 'normal') this.settle(s);
    });
  }

  async submit(user: UserRow, req: SubmitRequest): Promise<SubmitInfo> {
    const { source, dataset } = checkSubmit(this.d, user, req);
    const checkpoints = this.d.sessionService.checkpointDir(source);
    // Checked before the team's slot is taken; copied (and checked again, as read) after.
    await copyCheckpoint(checkpoints, source, req.checkpoint, dataset, null);
    const reserved = this.d.submits.reserve(
      { sourceName: source.name, checkpoint: req.checkpoint, userId: user.id, teamId: user.teamId, datasetId: dataset.id, test: req.test },
      dataset.submitIntervalMs,
    );
    if ('kind' in reserved) {
      if (reserved.kind === 'evaluating') {
        throw new KhdError('KHD_SUBMIT_BUSY', `a submit of team ${user.team} is being evaluated: wait for it to finish (khd dataset submits ${dataset.name})`);
      }
      throw new KhdError('KHD_SUBMIT_TOO_SOON', `team ${user.team} has submitted to ${dataset.name} within the last ${formatInterval(dataset.submitIntervalMs)}: the next counted submit is allowed at ${new Date(reserved.nextAt).toISOString()} (test submits with -t are allowed now)`);
    }
    const id = reserved.id;
    const staged = this.d.dataDir.stagedCheckpoint(id);
    try {
      await copyCheckpoint(checkpoints, source, req.checkpoint, dataset, staged);
    } catch (err) {
      await rm(staged, { recursive: true, force: true });
      this.d.submits.finish(id, { error: `InvalidCheckpoint: ${(err as Error).message}` });
      throw err;
    }
    try {
      await this.d.sessionService.launch(
        {
          userId: user.id, user: user.name, datasetId: dataset.id, dataset: dataset.name,
          type: req.test ? 'submit(test)' : 'submit', uploadId: source.uploadId, entry: source.entry,
          args: [...source.args, '--mode', 'test', '--pause', '1', '--iteration', req.checkpoint],
          gpus: source.gpus, cpus: source.cpus, memory: source.memory, shmSize: source.shmSize,
          memo: `${req.test ? 'test submit' : 'submit'} of ${source.name} ${req.checkpoint}`,
          // The source's environment, and so its cached packages.
          env: source.env,
        },
        (row) => {
          this.d.submits.setSession(id, row.id);
          // The copy moves into the submit session's folder, and goes with it.
          mkdirSync(this.d.dataDir.session(row.id), { recursive: true, mode: 0o700 });
          renameSync(staged, this.d.dataDir.submitCheckpoint(row.id));
        },
      );
    } catch (err) {
      await rm(staged, { recursive: true, force: true });
      this.d.submits.finish(id, { error: `PlatformError: the submit session could not be started (${(err as Error).message})` });
      throw err;
    }
    this.watch(id);
    return this.view(this.d.submits.byId(id)!);
  }

  /** The submit session sees test inputs, the checkpoint (read-only), a folder for predictions. */
  private async plan(s: SessionRow): Promise<LaunchPlan> {
    const submit = this.d.submits.bySession(s.id);
    if (!submit) throw new Error(`session ${s.name} has no submit`);
    const dataset = this.d.datasets.byId(submit.datasetId)!;
    const priv = this.d.dataDir.datasetPrivate(dataset.name);
    const out = this.d.dataDir.submitOutput(s.id);
    await mkdir(out, { recursive: true });
    await mkdir(this.d.dataDir.state(s.id), { recursive: true });
    const loader = join(priv, 'data_loader.py');
    // Ensembles load the team's other checkpoints at the top of main.py, before paused().
    const team = await this.d.sessionService.plans.teamCheckpoints(s);
    return {
      datasetParts: [{ name: 'test', host: join(priv, submit.test ? 'test_submit' : 'test') }],
      mounts: [
        // The server's copy, made when the submit was accepted (copyCheckpoint).
        { env: 'KHD_SUBMIT_CHECKPOINT', host: this.d.dataDir.submitCheckpoint(s.id), inside: `${SANDBOX_SUBMIT}/checkpoint`, writable: false },
        { env: 'KHD_SUBMIT_OUTPUT', host: out, inside: `${SANDBOX_SUBMIT}/out`, writable: true, file: PREDICTIONS_FILE },
        ...(existsSync(loader) ? [{ env: 'KHD_DATA_LOADER', host: loader, inside: `${SANDBOX_SUBMIT}/data_loader.py`, writable: false }] : []),
        ...team.mounts,
        this.d.sessionService.plans.stateMount(s.id),
      ],
      env: { ...team.env, KHD_SUBMIT: submit.test ? 'test' : 'real' },
    };
  }

  /** Follows the stages from the runtime's events and enforces the paused and inference deadlines. */
  private watch(id: number): void {
    let busy = false;
    const tick = async () => {
      const submit = this.d.submits.byId(id);
      const session = submit?.sessionId == null ? undefined : this.d.sessions.byId(submit.sessionId);
      if (!submit || submit.status !== 'evaluating' || !session || isFinished(session.status)) return this.unwatch(id);
      if (session.status !== 'Running' || !session.startedAt) return;
      const events = await this.d.events.read(this.d.dataDir.events(session.id));
      // The session may have ended, or the submit been decided, while the file was read.
      if (this.d.submits.byId(id)?.status !== 'evaluating') return;
      const dataset = this.d.datasets.byId(submit.datasetId)!;
      const now = this.d.now();
      if (submit.stage === 'queued') this.d.submits.setStage(id, 'started');
      if (events.loadSeconds !== null && submit.stage !== 'loaded') this.d.submits.setStage(id, 'loaded', { loadSeconds: events.loadSeconds });
      if (events.pausedAt === null && now - Date.parse(session.startedAt) > dataset.pausedTimeoutMs) {
        this.fail(id, session, `PausedTimeout: nsml.paused() was not reached within ${formatInterval(dataset.pausedTimeoutMs)}`);
      } else if (events.pausedAt !== null && events.inferSeconds === null && now - events.pausedAt > dataset.inferTimeoutMs) {
        this.fail(id, session, `InferTimeout: loading and inference did not finish within ${formatInterval(dataset.inferTimeoutMs)}`);
      }
    };
    // One tick at a time: a slow read is not overtaken by the next.
    const run = () => {
      if (busy) return;
      busy = true;
      this.track(tick().catch((err: Error) => this.d.warn(`submit ${id}: ${err.message}`))).finally(() => (busy = false));
    };
    const timer = setInterval(run, this.d.pollMs ?? SUBMIT_POLL_MS);
    timer.unref();
    this.watchers.set(id, timer);
    run();
  }

  private unwatch(id: number): void {
    clearInterval(this.watchers.get(id));
    this.watchers.delete(id);
  }

  private fail(id: number, session: SessionRow, error: string): void {
    this.d.submits.finish(id, { error });
    this.d.sessionService.stop(session);
  }

  /** Decides the submit of an ended session; a failure of the server's own is recorded as one. */
  private settle(session: SessionRow): void {
    const settling = this.onSessionEnded(session).catch((err: Error) => {
      this.d.warn(`submit session ${session.name}: ${err.stack ?? err.message}`);
      const submit = this.d.submits.bySession(session.id);
      if (submit?.status === 'evaluating') this.d.submits.finish(submit.id, { error: `PlatformError: scoring failed on the server (${err.message})` });
    });
    this.track(settling);
  }

  /** Work on the store still under way: close() waits for it. */
  private track(work: Promise<void>): Promise<void> {
    this.pending.add(work);
    return work.finally(() => this.pending.delete(work));
  }

  /** The session ended: score what it predicted, or name what went wrong. */
  private async onSessionEnded(session: SessionRow): Promise<void> {
    const submit = this.d.submits.bySession(session.id);
    if (!submit) return;
    this.unwatch(submit.id);
    if (submit.status !== 'evaluating') return;
    const events = await this.d.events.read(this.d.dataDir.events(session.id));
    if (events.loadSeconds !== null) this.d.submits.setStage(submit.id, 'loaded', { loadSeconds: events.loadSeconds });
    const failure = () => failureClass(session, events.pausedAt !== null, events.loadSeconds !== null);
    if (events.inferSeconds === null) {
      this.d.submits.finish(submit.id, { error: failure() });
      return;
    }
    // The predictions are the session's file: copied out without following a link, capped,
    // and only the copy is scored.
    const scoring = this.d.dataDir.scoring(session.id);
    try {
      await rm(scoring, { recursive: true, force: true });
      await mkdir(scoring, { mode: 0o755 });
      await copyOut(this.d.dataDir.submitOutput(session.id), PREDICTIONS_FILE, join(scoring, PREDICTIONS_FILE), MAX_PREDICTIONS_BYTES);
    } catch (err) {
      if (!(err instanceof UntrustedFileError)) throw err;
      this.d.submits.finish(submit.id, { error: err.why === 'missing' ? failure() : predictionsRefused(err) });
      return;
    }
    this.d.submits.setStage(submit.id, 'scoring', { inferSeconds: events.inferSeconds });
    const dataset = this.d.datasets.byId(submit.datasetId)!;
    const priv = this.d.dataDir.datasetPrivate(dataset.name);
    const kind = submit.test ? 'test_submit' : 'test';
    try {
      const score = await this.d.scorer.score({
        metric: dataset.metric, datasetName: dataset.name, predictionsDir: scoring, predictionsFile: PREDICTIONS_FILE,
        labelsDir: join(this.d.dataDir.datasetLabels(dataset.name), kind), labelNames: labelNames(dataset.labels),
        evaluationPy: existsSync(join(priv, 'evaluation.py')) ? join(priv, 'evaluation.py') : null,
        scratchDir: this.d.dataDir.session(session.id),
      });
      this.d.submits.finish(submit.id, { score });
    } catch (err) {
      // A test submit on a sample without labels ran all the way: what it predicted is its result.
      if (submit.test && err instanceof NoLabelsError) {
        const note = `not scored: ${dataset.name}'s test_submit/ sample has no labels (${err.message}); the organiser can add test_submit/test_label`;
        this.d.submits.finish(submit.id, { unscored: note, preview: await previewOf(join(scoring, PREDICTIONS_FILE)) });
        return;
      }
      const kindOf = err instanceof PredictionError ? 'WrongPredictions' : 'ScoringError';
      this.d.submits.finish(submit.id, { error: `${kindOf}: ${(err as Error).message}` });
    }
  }

  /** After a restart: finished sessions get their outcome, the others are watched again. */
  recover(): void {
    // Checkpoint copies of submits that a stop of the server caught before their session existed.
    for (const name of readdirSync(this.d.dataDir.sessionsRoot)) {
      if (name.startsWith(STAGED_CHECKPOINT_PREFIX)) rmSync(join(this.d.dataDir.sessionsRoot, name), { recursive: true, force: true });
    }
    for (const submit of this.d.submits.evaluating()) {
      const session = submit.sessionId === null ? undefined : this.d.sessions.byId(submit.sessionId);
      if (!session) this.d.submits.finish(submit.id, { error: 'PlatformError: the submit session is gone' });
      else if (isFinished(session.status)) this.settle(session);
      else this.watch(submit.id);
    }
  }

  get(user: UserRow, id: number): SubmitInfo {
    const submit = this.d.submits.byId(id);
    if (!submit || submit.teamId !== user.teamId) throw new KhdError('KHD_SUBMIT_NOT_FOUND', `submit ${id} does not exist`);
    return this.view(submit);
  }

  /** The team's own submissions to a dataset, newest first. */
  history(user: UserRow, datasetName: string): SubmitInfo[] {
    const dataset = this.d.datasets.visible(datasetName, user);
    return this.d.submits.forTeam(user.teamId, dataset.id).map((s) => this.view(s));
  }

  private view(s: SubmitRow): SubmitInfo {
    const { userId: _u, teamId: _t, datasetId: _d, sessionId: _s, ...info } = s;
    return info;
  }

  /** Stops watching, and waits for the work under way: the store stays open until then. */
  async close(): Promise<void> {
    for (const id of [...this.watchers.keys()]) this.unwatch(id);
    await Promise.all(this.pending);
  }
}
