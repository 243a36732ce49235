import { InstallError, type EnvironmentService } from '../environments/environment-service.js';
import type { InstallLimits } from '../environments/layers.js';
import type { ExecResult, Execution, PythonRuntime } from '../executor/executor.js';
import type { SessionRow } from '../store/sessions.js';

export interface EnvironmentRun {
  environments: EnvironmentService;
  session: SessionRow;
  /** The session's laid-out code: where its #nsml: line and requirements are read. */
  tree: string;
  limits: InstallLimits;
  /** The session's log, for what the environment's preparation says. */
  log: (lines: string[]) => void;
  now: () => number;
  warn: (message: string) => void;
}

/**
 * A session's run in two phases: its environment made ready (its requirements installed into
 * a cached layer, said in its log), then its code, started by `run`. A stop reaches whichever
 * phase runs; a requirement that cannot be installed fails the session before its code starts.
 */
export function inEnvironment(e: EnvironmentRun, run: (python: PythonRuntime) => Execution): Execution {
  let stopping: { limit?: string } | undefined;
  let stopCurrent: ((limit?: string) => void) | undefined;
  /** The code's run, once the environment is ready. */
  let code: Execution | undefined;
  const startedAt = e.now();
  const ended = (over: Partial<ExecResult>): ExecResult => ({
    exitCode: null, signal: null, timedOut: false, stopped: stopping !== undefined && !stopping.limit, startedAt, endedAt: e.now(),
    ...(stopping?.limit ? { limit: stopping.limit } : {}), ...over,
  });
  const result = (async (): Promise<ExecResult> => {
    let python: PythonRuntime;
    try {
      ({ python } = await e.environments.prepare(e.tree, e.session.env, e.limits, {
        log: e.log,
        running: (stop) => (stopCurrent = stop),
        stopped: () => stopping !== undefined,
      }));
    } catch (err) {
      if (stopping) return ended({});
      if (!(err instanceof InstallError)) e.warn(`session ${e.session.name}: preparing its environment: ${(err as Error).stack ?? (err as Error).message}`);
      return ended({ failure: err instanceof InstallError ? err.message : 'could not prepare its environment on the server (see the server log)' });
    }
    if (stopping) return ended({});
    code = run(python);
    const execution = code;
    stopCurrent = (limit) => execution.stop(limit);
    return execution.result;
  })();
  return {
    result,
    stop: (limit) => {
      stopping ??= { limit };
      stopCurrent?.(limit);
    },
    waiting: () => (code ? (code.waiting?.() ?? null) : 'preparing its environment'),
    detach: () => code?.detach?.() ?? false,
    enter: (argv, onLines, timeoutMs) => code?.enter?.(argv, onLines, timeoutMs),
  };
}
