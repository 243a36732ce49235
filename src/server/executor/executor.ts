import type { LogStream } from '../../protocol/types.js';

/** What the executor needs to run one session; no HTTP, no database. */
export interface ExecSpec {
  workDir: string;
  /** Host folder mounted read-only as the session's DATASET_PATH (it holds `train/`), or null. */
  datasetDir: string | null;
  datasetName: string | null;
  sessionName: string;
  entry: string;
  args: string[];
  gpuIds: number[];
}

/** The result record of one run (after execa's): how it ended, never thrown. */
export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stopped: boolean;
  startedAt: number;
  endedAt: number;
  /** Set when the process could not be started at all. */
  error?: string;
}

export interface Execution {
  readonly result: Promise<ExecResult>;
  /** SIGTERM to the whole process group, SIGKILL after the grace period. */
  stop(): void;
}

export type LineSink = (stream: LogStream, lines: string[]) => void;

export interface Executor {
  /** Whether sessions run inside a sandbox (shown to clients, warned about when false). */
  readonly sandboxed: boolean;
  start(spec: ExecSpec, onLines: LineSink): Execution;
}
