import { rm } from 'node:fs/promises';
import { KhdError } from '../../protocol/errors.js';
import { NO_DATASET } from '../../protocol/session-name.js';
import { isFinished, type CheckpointInfo, type ForkRequest, type RunRequest, type SessionInfo } from '../../protocol/types.js';
import type { SessionLimits } from '../config.js';
import type { DataDir } from '../data-dir.js';
import type { ExecLimits, Execution, Executor, LineSink, RunHooks } from '../executor/executor.js';
import type { LogStore } from '../logs/log-store.js';
import type { AccountStore, UserRow } from '../store/accounts.js';
import type { DatasetStore } from '../store/datasets.js';
import type { NewSession, SessionEnd, SessionRow, SessionStore } from '../store/sessions.js';
import type { SubmitStore } from '../store/submits.js';
import type { UploadStore } from '../store/uploads.js';
import { forgetUpload } from '../uploads/upload-service.js';
import { checkpointFolders, CheckpointSizes, listCheckpoints } from './checkpoints.js';
import { forkOf } from './fork.js';
import type { DiskWatch } from './disk-watch.js';
import type { EnvironmentService } from '../environments/environment-service.js';
import { inEnvironment } from './in-environment.js';
import { followRun, sessionEnd } from './session-run.js';
import { LaunchPlans, type LaunchPlan } from './launch-plans.js';
import { SessionGuard } from './session-guard.js';
import { layOutWorkFolder } from './work-folder.js';
import { admittedGpus, overTeamLimit, teamGpus } from './team-gpus.js';
import type { SessionEvents } from './session-events.js';

export const RESTART_REASON = 'the server restarted while the session was running';
export const UNSANDBOXED_WARNING =
  'khd: warning: this server runs sessions without a sandbox (--no-sandbox): no limits on what this code can see or reach';
export const SHUTDOWN_REASON = 'the server shut down while the session was running';

export interface SessionServiceDeps {
  sessions: SessionStore;
  submits: SubmitStore;
  events: SessionEvents;
  uploads: UploadStore;
  datasets: DatasetStore;
  accounts: AccountStore;
  environments: EnvironmentService;
  logs: LogStore;
  /** Where sessions run, and who admits them (its GPUs: this machine's pool, or the scheduler's). */
  executor: Executor;
  dataDir: DataDir;
  diskWatch: DiskWatch;
  /** GPUs one team's training sessions may hold at once (`--max-gpus-per-team`); none: no limit. */
  maxGpusPerTeam?: number;
  now: () => number;
  warn: (message: string) => void;
  limits: SessionLimits;
}

/**
 * The life of a session: created Queued, started when the executor admits it (its GPUs free here,
 * or placed by the scheduler), ended exactly once. A run that outlives the server (a Slurm job)
 * is followed again after a restart, from where its log stopped.
 */
export class SessionService {
  private readonly running = new Map<number, { execution: Execution; done: Promise<void> }>();
  private readonly starting = new Map<number, Promise<void>>();
  /** The sessions this server holds a run for (being started, or running): what teams' GPU limits count. */
  private readonly held = new Map<number, SessionRow>();
  /** Sessions whose job is being followed again after a restart (their folders being checked). */
  private readonly attaching = new Set<number>();
  private closing = false;
  private readonly endListeners: ((s: SessionRow) => void)[] = [];
  private readonly sizes = new CheckpointSizes();
  /** How submit sessions are laid out; set by the submit service. */
  submitPlanner?: (s: SessionRow) => Promise<LaunchPlan>;

  private readonly guard: SessionGuard;
  /** What sessions mount: the submit service plans submits with it too. */
  readonly plans: LaunchPlans;

  constructor(private readonly d: SessionServiceDeps) {
    this.guard = new SessionGuard(d);
    this.plans = new LaunchPlans({ ...d, sandboxed: d.executor.sandboxed });
  }

  /** Creates the session and, when its GPUs are free, starts it before answering. */
  async create(user: UserRow, req: RunRequest): Promise<SessionRow> {
    const dataset = req.dataset === null ? undefined : this.d.datasets.visible(req.dataset, user);
    const gpus = this.admit(user, req.gpus);
    const upload = this.d.uploads.get(req.upload);
    if (!upload || upload.userId !== user.id || upload.purpose !== 'session') {
      throw new KhdError('KHD_UPLOAD_NOT_FOUND', `upload '${req.upload}' does not exist`);
    }
    if (!upload.files.some((f) => f.path === req.entry)) {
      throw new KhdError('KHD_BAD_REQUEST', `entry file '${req.entry}' is not in the upload: pass -e with a file of the project`);
    }
    this.d.environments.check(req.env);
    if (!this.d.uploads.transition(upload.id, 'ready', 'used')) {
      throw new KhdError('KHD_UPLOAD_STATE', `upload '${upload.id}' is ${upload.state}, not ready: run khd run again`);
    }
    return this.launch({
      userId: user.id, user: user.name, datasetId: dataset?.id ?? null, dataset: dataset?.name ?? null,
      type: 'normal', uploadId: upload.id, entry: req.entry, args: req.args, gpus, cpus: req.cpus,
      memory: req.memory, shmSize: req.shmSize, memo: req.memo, env: req.env ?? null,
    });
  }

  /** `khd fork` (fork.ts): a new session of `source` continuing from one of its checkpoints. */
  async fork(user: UserRow, source: SessionRow, req: ForkRequest): Promise<SessionRow> {
    const session = forkOf(source, req, await this.checkpoints(source));
    if (source.datasetId !== null) this.d.datasets.visible(source.dataset!, user);
    return this.launch({ ...session, userId: user.id, user: user.name, gpus: this.admit(user, req.gpus ?? source.gpus) });
  }

  private admit(user: UserRow, asked: number | undefined): number {
    const { executor, maxGpusPerTeam, submits } = this.d;
    return admittedGpus(user, asked, { total: executor.admission.gpus, onCluster: !!executor.queues, maxPerTeam: maxGpusPerTeam, teamEvaluating: submits.teamEvaluating(user.teamId) });
  }

  /** Records the session and starts it before answering when its GPUs are free. */
  async launch(session: NewSession, beforeStart?: (row: SessionRow) => void): Promise<SessionRow> {
    const row = this.d.sessions.insert(session);
    beforeStart?.(row);
    this.schedule();
    await this.starting.get(row.id);
    return this.d.sessions.byId(row.id)!;
  }

  onEnded(listener: (s: SessionRow) => void): void {
    this.endListeners.push(listener);
  }

  checkpointDir(s: Pick<SessionRow, 'user' | 'dataset' | 'number'>): string {
    return this.d.dataDir.checkpoints(s.user, s.dataset ?? NO_DATASET, s.number);
  }

  async checkpoints(s: SessionRow): Promise<CheckpointInfo[]> {
    return listCheckpoints(this.checkpointDir(s), await this.d.events.read(this.d.dataDir.events(s.id)), s.startedAt);
  }

  /** The wire view, with the last summary reported and the checkpoints kept. */
  async describe(s: SessionRow): Promise<SessionInfo> {
    const { id: _i, userId: _u, datasetId: _d, uploadId: _up, gpuIds: _g, job: _j, ...info } = s;
    const events = await this.d.events.read(this.d.dataDir.events(s.id));
    const dir = this.checkpointDir(s);
    const folders = await checkpointFolders(dir);
    return { ...info, summary: events.lastSummary, models: folders.length, modelsSize: await this.sizes.of(dir, folders, s.id, isFinished(s.status)), queueReason: this.queueReason(s) };
  }

  /** The folders and environment of a session: a training session's (launch-plans.ts), or a submit's. */
  private async plan(s: SessionRow): Promise<LaunchPlan> {
    if (s.type === 'normal') return this.plans.training(s, this.checkpointDir(s));
    if (!this.submitPlanner) throw new Error('no submit planner');
    return this.submitPlanner(s);
  }

  /**
   * Starts every queued session whose GPUs are free, oldest first, within its team's GPU limit
   * (`--max-gpus-per-team`: KHD2020 gave each team one GPU). Submits are not held by the limit:
   * a team's training may hold its GPU while the team submits.
   */
  schedule(): void {
    if (this.closing) return;
    const inUse = teamGpus(this.held.values());
    for (const s of this.d.sessions.withStatus('Queued')) {
      if (this.held.has(s.id)) continue;
      if (overTeamLimit(s, inUse, this.d.maxGpusPerTeam)) continue;
      const gpuIds = this.d.executor.admission.take(s.gpus);
      if (!gpuIds) continue;
      if (s.type === 'normal') inUse.set(s.teamId, (inUse.get(s.teamId) ?? 0) + s.gpus);
      this.hold(s, this.start(s, gpuIds));
    }
  }

  /** Holds `s` while `starting` runs (and after, while its run goes on). */
  private hold(s: SessionRow, starting: Promise<void>): void {
    this.held.set(s.id, s);
    this.starting.set(
      s.id,
      starting.finally(() => {
        this.starting.delete(s.id);
        if (!this.running.has(s.id)) this.held.delete(s.id);
      }),
    );
  }

  /**
   * Why a queued session waits: the scheduler's reason (Slurm's pending reason, in words), its
   * team's GPU limit, or GPUs that others hold here (how many wait before it).
   */
  queueReason(s: SessionRow): string | null {
    if (s.status !== 'Queued') return null;
    const run = this.running.get(s.id);
    if (run) return run.execution.waiting?.() ?? 'starting';
    if (this.starting.has(s.id)) return 'starting';
    if (overTeamLimit(s, teamGpus(this.held.values()), this.d.maxGpusPerTeam)) return `your team's GPU limit (${this.d.maxGpusPerTeam}) is in use`;
    const ahead = this.d.sessions.withStatus('Queued').filter((q) => q.id < s.id && q.gpus > 0).length;
    return `waiting for ${s.gpus === 1 ? 'a GPU' : `${s.gpus} GPUs`} (${ahead === 0 ? 'next in line' : `${ahead} session${ahead === 1 ? '' : 's'} ahead`})`;
  }

  private async start(s: SessionRow, gpuIds: number[]): Promise<void> {
    const dataset = s.datasetId === null ? undefined : this.d.datasets.byId(s.datasetId);
    const work = this.d.dataDir.work(s.id);
    let plan: LaunchPlan;
    let tree: string;
    try {
      await this.d.logs.open(s.id);
      tree = await layOutWorkFolder(this.d.uploads, this.d.dataDir, s.uploadId, work, this.d.executor.ownUids);
      plan = await this.plan(s);
    } catch (err) {
      this.d.executor.admission.release(gpuIds);
      this.d.warn(`session ${s.name}: could not lay out its work folder: ${(err as Error).message}`);
      this.finish(s.id, this.failure('could not prepare the session on the server (see the server log)'));
      return;
    }
    // A stop, a removal or a shutdown may have come while the work folder was being laid out;
    // on shutdown the session stays Queued and starts after the next boot.
    if (this.closing || this.d.sessions.byId(s.id)?.status !== 'Queued') {
      this.d.executor.admission.release(gpuIds);
      this.d.logs.close(s.id);
      return;
    }
    // A scheduler holds the run until a node is free: the session is Running once it runs there.
    if (!this.d.executor.queues) this.d.sessions.markRunning(s.id, gpuIds);
    if (!this.d.executor.sandboxed) this.d.logs.append(s.id, 'stderr', [UNSANDBOXED_WARNING]);
    this.follow(s, plan, gpuIds, (onLines, hooks) => {
      const environment = { environments: this.d.environments, session: s, tree, limits: this.limitsOf(s), log: (lines: string[]) => onLines('stderr', lines), now: this.d.now, warn: this.d.warn };
      return inEnvironment(environment, (python) =>
        this.d.executor.start(
          { workDir: work, datasetName: dataset?.name ?? null, ...plan, sessionName: s.name, entry: s.entry, args: s.args, gpuIds, limits: this.limitsOf(s), python },
          onLines,
          hooks,
        ),
      );
    });
  }

  /**
   * Follows again, after a restart, a session whose run went on without the server (a Slurm job):
   * its log from the last line it kept, its limits watched, its end recorded as if never left.
   */
  private async reattach(s: SessionRow, job: string): Promise<void> {
    let plan: LaunchPlan;
    let mark: unknown;
    this.attaching.add(s.id);
    try {
      await this.d.logs.open(s.id);
      plan = await this.plan(s);
      mark = await this.d.logs.lastMark(s.id);
    } catch (err) {
      this.d.warn(`session ${s.name}: could not follow its job again: ${(err as Error).message}`);
      // Nothing runs unaccounted for: its job is stopped.
      this.d.executor.attach!(job, undefined, () => {}).stop();
      this.finish(s.id, this.failure(RESTART_REASON));
      return;
    } finally {
      this.attaching.delete(s.id);
    }
    const gpuIds = s.gpuIds.length > 0 ? s.gpuIds : [...Array(s.gpus).keys()];
    this.follow(s, plan, gpuIds, (onLines, hooks) => this.d.executor.attach!(job, mark, onLines, hooks));
  }

  /** Runs the session through `run` (session-run.ts); once it has ended, records how, and starts the next. */
  private follow(s: SessionRow, plan: LaunchPlan, gpuIds: number[], run: (onLines: LineSink, hooks: RunHooks) => Execution): void {
    const followed = followRun(this.d, this.guard, { session: s, plan, gpuIds, checkpointDir: this.checkpointDir(s) }, run, (result) => {
      this.running.delete(s.id);
      this.held.delete(s.id);
      // The run goes on without the server; the next start follows it again.
      if (result.detached) return this.d.logs.close(s.id);
      this.d.executor.admission.release(gpuIds);
      this.finish(s.id, sessionEnd(result));
      this.schedule();
    });
    this.running.set(s.id, followed);
  }

  /** What the session asked for, within what the server allows. */
  private limitsOf(s: SessionRow): ExecLimits {
    const max = this.d.limits;
    return {
      memoryBytes: Math.min(s.memory, max.maxMemoryBytes),
      cpus: Math.max(1, Math.min(s.cpus, max.maxCpus)),
      shmBytes: s.shmSize > 0 ? Math.min(s.shmSize, max.maxMemoryBytes) : undefined,
      wallMs: max.maxWallMs,
      fileBytes: max.maxDiskBytes,
    };
  }

  private failure(reason: string): SessionEnd {
    return { status: 'Failed', exitCode: null, signal: null, timedOut: false, stopped: false, reason, endedAt: this.d.now() };
  }

  private finish(id: number, end: SessionEnd): void {
    this.d.sessions.markEnded(id, end);
    this.d.logs.close(id);
    const row = this.d.sessions.byId(id);
    if (row) for (const listener of this.endListeners) listener(row);
  }

  stop(s: SessionRow): SessionRow {
    const run = this.running.get(s.id);
    if (run) run.execution.stop();
    // Being followed again after a restart: its job is stopped once it is followed.
    else if (this.attaching.has(s.id)) void this.starting.get(s.id)?.then(() => this.running.get(s.id)?.execution.stop());
    else if (s.status === 'Queued') {
      this.finish(s.id, { ...this.failure('stopped before it started'), status: 'Stopped', stopped: true });
    }
    return this.d.sessions.byId(s.id)!;
  }

  /**
   * `khd exec`: `argv` inside the running session's sandbox (Execution.enter), or why it cannot
   * be: the session is not running, or this server cannot enter its sandboxes.
   */
  exec(s: SessionRow, argv: string[], onLines: LineSink, timeoutMs: number): Execution {
    const run = this.running.get(s.id);
    if (s.status !== 'Running' || !run) throw new KhdError('KHD_BAD_REQUEST', `session ${s.name} is ${s.status}: khd exec runs commands inside a running session`);
    if (this.d.executor.queues) throw new KhdError('KHD_BAD_REQUEST', `session ${s.name} runs on a Slurm node: khd exec reaches sessions on the server's own machine`);
    const entered = run.execution.enter?.(argv, onLines, timeoutMs);
    if (!entered) {
      throw new KhdError('KHD_BAD_REQUEST', `session ${s.name} cannot be entered: khd exec needs a sandboxed server running as root (each session its own uid), and a session whose code has started`);
    }
    return entered;
  }

  /** Resolves when the session is neither being started nor running. */
  async waitForEnd(id: number): Promise<void> {
    await this.starting.get(id);
    await this.running.get(id)?.done;
  }

  async remove(s: SessionRow, force: boolean): Promise<void> {
    if (!isFinished(s.status)) {
      if (!force) throw new KhdError('KHD_SESSION_RUNNING', `session ${s.name} is ${s.status}: stop it first, or use khd rm -f`);
      this.stop(s);
      await this.waitForEnd(s.id);
    }
    this.d.sessions.delete(s.id);
    this.sizes.forget(s.id);
    this.d.logs.remove(s.id);
    this.d.events.forget(this.d.dataDir.events(s.id));
    await rm(this.d.dataDir.session(s.id), { recursive: true, force: true });
    await rm(this.checkpointDir(s), { recursive: true, force: true });
    if (!this.d.uploads.isReferenced(s.uploadId)) await forgetUpload(this.d.uploads, this.d.dataDir, s.uploadId);
  }

  /**
   * At boot: sessions whose run outlives the server (a Slurm job, running or still held by the
   * scheduler) are followed again; any other that was Running ended with the previous process;
   * queued sessions get their turn.
   */
  recover(): void {
    const attach = this.d.executor.attach !== undefined;
    for (const s of [...this.d.sessions.withStatus('Running'), ...this.d.sessions.withStatus('Queued')]) {
      if (attach && s.job) this.hold(s, this.reattach(s, s.job));
      else if (s.status === 'Running') this.d.sessions.markEnded(s.id, this.failure(RESTART_REASON));
    }
    this.schedule();
  }

  /**
   * Lets go of the runs that go on without the server (Slurm jobs: the next start follows them
   * again) and stops every other (recorded as Failed: the platform, not the user, ended it).
   */
  async shutdown(): Promise<void> {
    this.closing = true;
    await Promise.all(this.starting.values());
    const ids = [...this.running.keys()].filter((id) => !this.running.get(id)?.execution.detach?.());
    for (const id of ids) this.d.sessions.markEnded(id, this.failure(SHUTDOWN_REASON));
    for (const id of ids) this.running.get(id)?.execution.stop();
    await Promise.all([...this.running.keys()].map((id) => this.waitForEnd(id)));
  }
}
