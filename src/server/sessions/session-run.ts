import { formatSize } from '../../protocol/sizes.js';
import type { SessionLimits } from '../config.js';
import type { DataDir } from '../data-dir.js';
import type { ExecResult, Execution, LineSink, RunHooks } from '../executor/executor.js';
import type { LogStore } from '../logs/log-store.js';
import type { SessionEnd, SessionRow, SessionStore } from '../store/sessions.js';
import type { SessionGuard } from './session-guard.js';
import type { LaunchPlan } from './launch-plans.js';

export interface SessionRunDeps {
  logs: LogStore;
  sessions: SessionStore;
  limits: SessionLimits;
  dataDir: DataDir;
  warn: (message: string) => void;
}

export interface FollowedRun {
  execution: Execution;
  /** Resolves once `ended` has run. */
  done: Promise<void>;
}

/**
 * One session's run, followed: its output into its log within the log limit (each line with the
 * mark of its source, where a re-attached job resumes), what the scheduler says recorded (its
 * job, its start), its disk and files watched. `ended` gets how it ended, after the guard has
 * removed what a session over its disk limit wrote.
 */
export function followRun(
  d: SessionRunDeps,
  guard: SessionGuard,
  what: { session: SessionRow; plan: LaunchPlan; gpuIds: number[]; checkpointDir: string },
  run: (onLines: LineSink, hooks: RunHooks) => Execution,
  ended: (result: ExecResult) => void,
): FollowedRun {
  const s = what.session;
  const max = d.limits;
  let logged = 0;
  let overLog = false;
  const onLines: LineSink = (stream, lines, marks) => {
    if (overLog) return;
    logged += lines.reduce((sum, l) => sum + Buffer.byteLength(l) + 1, 0);
    if (logged > max.maxLogBytes) {
      // What a log can carry out is capped.
      overLog = true;
      return stopAt(`log limit ${formatSize(max.maxLogBytes)} reached`, ': the session is stopped and further output dropped');
    }
    d.logs.append(s.id, stream, lines, marks);
  };
  const hooks: RunHooks = {
    submitted: (job) => d.sessions.setJob(s.id, job),
    running: () => d.sessions.markRunning(s.id, what.gpuIds),
  };
  const execution = run(onLines, hooks);
  /** The platform ends the session at a limit: a last line in its log, and the reason on it. */
  const stopAt = (reason: string, detail: string) => {
    d.logs.append(s.id, 'stderr', [`khd: ${reason}${detail}`]);
    execution.stop(reason);
  };
  const work = d.dataDir.work(s.id);
  const writable = [work, ...what.plan.mounts.filter((m) => m.writable).map((m) => m.host)];
  const stopWatching = guard.watch(s.name, writable, d.dataDir.events(s.id), stopAt);
  const done = execution.result.then(async (result) => {
    stopWatching();
    if (!result.detached) {
      await guard.afterEnd(s.id, result.limit, work, what.checkpointDir).catch((err: Error) => d.warn(`session ${s.name}: ${err.message}`));
    }
    ended(result);
  });
  return { execution, done };
}

/** How a run's result reads as the session's end: its status and reason. */
export function sessionEnd(r: ExecResult): SessionEnd {
  const base = { exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, stopped: r.stopped, endedAt: r.endedAt };
  if (r.error) return { ...base, status: 'Failed', reason: `could not start the session: ${r.error}` };
  if (r.failure) return { ...base, status: 'Failed', reason: r.failure };
  if (r.limit) return { ...base, status: 'Failed', reason: r.limit };
  if (r.stopped) return { ...base, status: 'Stopped', reason: 'stopped by the user' };
  if (r.exitCode === null) return { ...base, status: 'Failed', reason: `killed by ${r.signal ?? 'a signal'}` };
  return { ...base, status: 'Exited', reason: null };
}
