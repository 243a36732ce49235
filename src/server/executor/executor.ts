import type { LimitEnforcement, LogStream } from '../../protocol/types.js';

/** What the executor needs to run one session; no HTTP, no database. */
export interface ExecSpec {
  workDir: string;
  datasetName: string | null;
  /** What the code sees under DATASET_PATH, read-only: `train` in training, `test` in a submit. */
  datasetParts: DatasetPart[];
  /** Further folders or files for the nsml runtime, each named to the code by an env variable. */
  mounts: Mount[];
  /** Extra environment (e.g. KHD_SUBMIT). */
  env: Record<string, string>;
  sessionName: string;
  entry: string;
  args: string[];
  gpuIds: number[];
  /** What the session may use; each missing one is not limited. */
  limits?: ExecLimits;
  /** The interpreter to run and the prefixes it needs mounted: the session's environment (default: the server's --python). */
  python?: PythonRuntime;
  /** Network, for a package install the organiser gave an index for; sessions never have it. */
  network?: boolean;
  /**
   * The GPU devices the sandbox may bind (default: gpuIds). A scheduler that places the job
   * (Slurm) decides which GPUs it gets on the node; its cgroup keeps the others out.
   */
  gpuDevices?: number[];
}

export interface PythonRuntime {
  executable: string;
  prefixes: string[];
}

export interface ExecLimits {
  /** Memory of all the session's processes together, with its /tmp and /dev/shm. */
  memoryBytes?: number;
  /** CPUs' worth of time the session's processes may use. */
  cpus?: number;
  /** Size of /dev/shm inside the sandbox. */
  shmBytes?: number;
  /** Wall-clock time from the start. */
  wallMs?: number;
  /** The largest file the session may write (RLIMIT_FSIZE): one file alone never passes the disk limit. */
  fileBytes?: number;
}

export interface DatasetPart {
  name: string;
  host: string;
}

export interface Mount {
  /** The variable that tells the code where it is (the inside path, or the host path unsandboxed). */
  env?: string;
  host: string;
  /** Where it appears in the sandbox. */
  inside: string;
  writable: boolean;
  /** A file inside the mounted folder that the variable should name instead of the folder. */
  file?: string;
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
  /** Set when the session failed before its code ran (its requirements could not be installed). */
  failure?: string;
  /** Set when a limit ended it: `out of memory (limit 256 MiB)`, `time limit 3600 s reached`. */
  limit?: string;
  /** Set when the server let go of a run that goes on without it (a Slurm job, at shutdown): it has not ended. */
  detached?: boolean;
}

export interface Execution {
  readonly result: Promise<ExecResult>;
  /**
   * SIGTERM to the session's processes, SIGKILL after the grace period. With a `limit`, the
   * stop is the platform's, not the user's: the result carries it as the reason.
   */
  stop(limit?: string): void;
  /**
   * Lets go of a run that outlives the server (a scheduler's job): it keeps running, `result`
   * resolves with `detached`, and attach() follows it again after the restart. False where the
   * run cannot go on alone (not yet submitted): it is to be stopped.
   */
  detach?(): boolean;
  /** Why a scheduler still holds the run (`Resources`, in words), or null once it runs. */
  waiting?(): string | null;
  /**
   * Runs `argv` inside the running sandbox (`khd exec`): as its uid, in its cgroup, with its
   * limits and no network, at most `timeoutMs`. Undefined where it cannot be entered (not
   * sandboxed as a uid of its own, not up yet, on another machine).
   */
  enter?(argv: string[], onLines: LineSink, timeoutMs: number): Execution | undefined;
}

/**
 * Lines of output as they come. `marks`, where given, says for each line where its source stands
 * after it: stored with the line, the last one is where a re-attached run resumes (LogStore.lastMark).
 */
export type LineSink = (stream: LogStream, lines: string[], marks?: unknown[]) => void;

/** What a run tells its owner besides its output. */
export interface RunHooks {
  /** The scheduler took the run as `job` (a Slurm job id and its uid): what attach() needs after a restart. */
  submitted?(job: string): void;
  /** The code started on its node: a scheduler may have held the run until now. */
  running?(): void;
}

/**
 * Who may start now and with which GPUs. Locally, khd's own pool of this machine's GPUs; with a
 * scheduler, the scheduler's (it places each run): khd never keeps a second pool beside it.
 */
export interface Admission {
  /** The most GPUs one session can be given (what `-g` is checked against). */
  readonly gpus: number;
  /** GPUs for a run now (their indices), or undefined while others hold them. */
  take(count: number): number[] | undefined;
  release(ids: number[]): void;
}

export interface Executor {
  /** Whether sessions run inside a sandbox (shown to clients, warned about when false). */
  readonly sandboxed: boolean;
  /**
   * Whether each session runs as a uid of its own, not the server's (a server running as root):
   * the executor then gives the work folder's folders and the writable mounts to that uid, and
   * files the code must not change (its code, hard links to stored contents) stay root's.
   */
  readonly ownUids: boolean;
  /** How the limits are enforced, in words: the kernel's cgroups, or polling (and why). */
  readonly enforcement: LimitEnforcement;
  /**
   * Whether a scheduler holds runs until it places them on a node: the session then stays Queued
   * until `running`, with the scheduler's reason (Execution.waiting); locally a run starts at once.
   */
  readonly queues: boolean;
  readonly admission: Admission;
  start(spec: ExecSpec, onLines: LineSink, hooks?: RunHooks): Execution;
  /**
   * Follows again a run that went on while the server was away (`job` from `submitted`), its
   * output from `mark` (the last mark the log kept). Only executors whose runs outlive the server.
   */
  attach?(job: string, mark: unknown, onLines: LineSink, hooks?: RunHooks): Execution;
}
