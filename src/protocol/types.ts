/** Wire types of the HTTP API under `/api/v1`, shared by the server and the CLI. */
export const API_PREFIX = '/api/v1';
/** Where `khd server` listens and the CLI looks by default. */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8757;

export type SessionStatus = 'Queued' | 'Running' | 'Exited' | 'Failed' | 'Stopped';
export type SessionType = 'normal' | 'submit' | 'submit(test)';

export function isFinished(status: SessionStatus): boolean {
  return status === 'Exited' || status === 'Failed' || status === 'Stopped';
}

export interface ServerInfo {
  version: string;
  gpus: number;
  sandbox: boolean;
  limits: UploadLimits;
  /** The most one session may use, whatever it asks for. */
  sessionLimits: SessionLimitsInfo;
  /** How those limits are kept. */
  enforcement: LimitEnforcement;
}

export interface LimitEnforcement {
  /** `cgroup v1 (memory, pids, cpu)`: the kernel's; or `polling every 100 ms`. */
  memory: string;
  /** Why there are no cgroups, where there are none. */
  fallbackReason?: string;
  /** `70000-70999`: the uids sessions run as, one each; absent when they run as the server's. */
  uids?: string;
}

export interface SessionLimitsInfo {
  maxMemoryBytes: number;
  maxCpus: number;
  maxWallMs: number;
  maxLogBytes: number;
  /** Its work folder, checkpoints and events together. */
  maxDiskBytes: number;
  /** Files and folders in those, together. */
  maxFiles: number;
}

export interface UploadLimits {
  maxFiles: number;
  maxTotalBytes: number;
  maxFileBytes: number;
  maxDepth: number;
  maxPathLength: number;
}

export interface LoginRequest {
  user: string;
  password: string;
}

export interface LoginResponse {
  token: string;
  expiresAt: string;
  me: Me;
}

export interface Me {
  user: string;
  team: string;
  admin: boolean;
}

export interface AddUserRequest {
  name: string;
  team?: string;
  admin?: boolean;
  password: string;
}

/** One packaged file. `mode` keeps only the executable bit that matters to a session. */
export interface ManifestEntry {
  path: string;
  size: number;
  mode: number;
  sha256: string;
}

export type UploadPurpose = 'session' | 'dataset';

/**
 * A manifest entry as the CLI sends it: without `sha256` when the file was not hashed first (a
 * cold hash cache, and no content of the user's has its size). Its content is then sent
 * whatever the server holds, and the server computes its hash as it arrives.
 */
export type UploadEntry = Omit<ManifestEntry, 'sha256'> & { sha256?: string };

export interface CreateUploadRequest {
  purpose: UploadPurpose;
  files: UploadEntry[];
}

export interface UploadInfo {
  id: string;
  /** The paths whose contents the server lacks (one per content; every unhashed entry): the only ones to send. */
  send: string[];
  /** receiving → extracting → ready → used; a failed extraction goes back to receiving. */
  state: 'receiving' | 'extracting' | 'ready' | 'used' | 'cancelled';
  /** Once ready: the sha256 the server computed for each entry sent without one, in the manifest's order. */
  hashes?: string[];
}

/**
 * POST /uploads's answer when some entries sent without a hash have the size of one of the
 * user's contents (so may be one): no upload is made; the CLI hashes those and asks again.
 */
export interface HashFirst {
  hashFirst: string[];
}

export interface DatasetOptions {
  leaderboard: boolean;
  metric: 'accuracy' | 'macro_f1' | 'mse' | 'custom';
  order: 'desc' | 'asc';
  modelSizeLimit: number;
  submitIntervalMs: number;
  private: boolean;
  description: string;
  /** A submit must reach nsml.paused() within this long of starting (KHD: 600 s). */
  pausedTimeoutMs: number;
  /** ... and finish inference within this long of loading the checkpoint (KHD: 3600 s). */
  inferTimeoutMs: number;
  /** The competition window (ISO times); counted and test submits alike are refused outside it. */
  submitFrom: string | null;
  submitUntil: string | null;
  /**
   * Names, inside test/ and test_submit/, of the ground truth (besides `test_label`, NSML's and
   * khd's name): taken out of what submits see, given to the scorer.
   */
  labels: string[];
  /**
   * Whether participants may take checkpoints and sessions' files out (`khd model pull`, `khd
   * download`); false for events that said "downloading models is not supported".
   */
  modelPull: boolean;
}

export interface PushDatasetRequest extends Partial<DatasetOptions> {
  name: string;
  upload: string;
  /** Names inside test/ and test_submit/ that look like labels but are inputs the code may read. */
  visible?: string[];
}

/** What a push made of the folder: what each kind of session sees, and where the labels went. */
export interface DatasetLayout {
  /** Files under train/: DATASET_PATH/train of training sessions. */
  train: number;
  /** test/ (DATASET_PATH/test of a submit) and test_submit/ (of a test submit): inputs, and the labels taken out. */
  test: { files: number; labels: string[] } | null;
  testSubmit: { files: number; labels: string[] } | null;
  /** The built-in metric, or `evaluation.py`. */
  scoring: string;
  /** Other files at the folder's root, kept by the server (data_loader.py, evaluation.py, ...). */
  kept: string[];
}

export interface PushDatasetResponse extends DatasetInfo {
  layout: DatasetLayout;
}

export interface DatasetInfo extends DatasetOptions {
  name: string;
  size: number;
  files: number;
  createdAt: string;
  /** Who pushed it ('' for datasets pushed before this was kept). */
  author: string;
  /** Its push, or its last change (khd dataset change). */
  modifiedAt: string;
}

/** What `khd dataset change` may change: the description, the metric, the limits, the window, who sees it. */
export type DatasetChange = Partial<
  Pick<DatasetOptions, 'description' | 'metric' | 'order' | 'modelSizeLimit' | 'submitIntervalMs' | 'pausedTimeoutMs' | 'inferTimeoutMs' | 'submitFrom' | 'submitUntil' | 'private' | 'modelPull'>
>;

/** One change an admin made to a dataset, as logged. */
export interface DatasetChangeRecord {
  by: string;
  field: keyof DatasetChange;
  old: unknown;
  new: unknown;
  at: string;
}

/** A file of a dataset as the server keeps it (`khd dataset fs`, admin): where it went at push. */
export interface DatasetFile {
  /** public: what training sessions see; private: submits and the server; labels: the scorer only. */
  part: 'public' | 'private' | 'labels';
  path: string;
  size: number;
}

export interface RunRequest {
  upload: string;
  dataset: string | null;
  entry: string;
  args: string[];
  gpus?: number;
  cpus: number;
  memory: number;
  shmSize: number;
  memo: string;
  /** The environment to run on (`khd run --env`); otherwise the `#nsml:` line chooses, else the default. */
  env?: string | null;
}

/** `khd fork`: a new session of a training session's code and dataset, continuing from one of its checkpoints. */
export interface ForkRequest {
  /** Default: the checkpoint saved last. */
  checkpoint?: string | null;
  /** The code's arguments (default: the source's); the reserved `--pause 1 --iteration CKPT` follow them. */
  args?: string[] | null;
  gpus?: number;
  cpus?: number;
  memory?: number;
  memo?: string;
}

export interface SessionInfo {
  name: string;
  user: string;
  dataset: string | null;
  number: number;
  type: SessionType;
  status: SessionStatus;
  exitCode: number | null;
  signal: string | null;
  reason: string | null;
  entry: string;
  args: string[];
  gpus: number;
  cpus: number;
  memory: number;
  shmSize: number;
  memo: string;
  /** The environment asked for with --env (null: chosen by the `#nsml:` line, or the default). */
  env: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  summary: Record<string, number> | null;
  /** Why a Queued session waits (`waiting for a GPU (3 sessions ahead)`, `your team's GPU limit (1) is in use`). */
  queueReason?: string | null;
  /** The session and checkpoint a fork continues from (`khd fork`); null for others. */
  forkOf: { session: string; checkpoint: string } | null;
  models: number;
  modelsSize: number;
}

/** One `nsml.report`: its step (null when none was given), when (epoch ms), and its numbers. */
export interface MetricPoint {
  step: number | null;
  ts: number | null;
  metrics: Record<string, number>;
}

/** Reports from a byte offset of the session's events; ask again from `offset` for newer ones. */
export interface MetricsPage {
  offset: number;
  points: MetricPoint[];
  /** More is already there (the page was cut): ask again at once. */
  more: boolean;
}

export type LogStream = 'stdout' | 'stderr';

/** One line of a session's log; `id` is its 1-based position in the append-only log. */
export interface LogRecord {
  id: number;
  ts: string;
  stream: LogStream;
  line: string;
}

/** Data of the SSE `end` event. */
export interface LogEnd {
  status: SessionStatus;
  exitCode: number | null;
  reason: string | null;
}

export const LOG_EVENT_END = 'end';

export type SubmitStage = 'queued' | 'started' | 'loaded' | 'scoring' | 'done' | 'failed';

export interface SubmitRequest {
  session: string;
  checkpoint: string;
  test: boolean;
}

/** A submission; a real one shows its owner only the stage, the score or the error class. */
export interface SubmitInfo {
  id: number;
  /** The submit session (USER/DATASET/N), null once removed. */
  session: string | null;
  /** The session whose code and checkpoint were submitted. */
  source: string;
  checkpoint: string;
  user: string;
  team: string;
  dataset: string;
  test: boolean;
  /** `unscored`: a test submit that ran, on a public sample without labels. */
  status: 'evaluating' | 'scored' | 'unscored' | 'failed';
  stage: SubmitStage;
  score: number | null;
  error: string | null;
  /** Why an unscored submit was not scored. */
  note: string | null;
  /** An unscored submit's first predictions. */
  preview: string[] | null;
  loadSeconds: number | null;
  inferSeconds: number | null;
  createdAt: string;
  endedAt: string | null;
}

export interface BoardRow {
  rank: number;
  /** The session the team's best came from. */
  name: string;
  /** Its score, in full; shown with formatScore. */
  score: number;
  /** Its checkpoint. */
  model: string;
  team: string;
  /** Who submitted it. */
  user: string;
  /** When it was submitted. */
  recorded: string;
  count: number;
  lastSubmit: string;
}

export interface CheckpointInfo {
  checkpoint: string;
  lastModified: string;
  /** Seconds from the session's start to the save. */
  elapsed: number | null;
  summary: Record<string, number> | null;
  size: number;
}

/** A Python stack sessions run on: an interpreter prefix (a venv, a conda env, a system Python). */
export interface EnvironmentInfo {
  name: string;
  kind: 'python';
  /** The interpreter sessions run. */
  python: string;
  /** Globs of the NSML image names (`#nsml:` lines) that choose it. */
  aliases: string[];
  default: boolean;
  description: string;
  /** Python's version, and the versions of the main packages found in it. */
  version: string | null;
  packages: Record<string, string>;
  /** Whether it sees GPUs (torch.cuda.is_available() where torch is installed). */
  gpus: boolean;
  /** The server's own `--python`: not removed with `khd env rm`. */
  builtIn: boolean;
}

export interface AddEnvironmentRequest {
  name: string;
  python: string;
  aliases?: string[];
  default?: boolean;
  description?: string;
}

/** What admins see of the environments beside the list: cached package layers, system packages asked for. */
export interface EnvironmentDetails {
  layers: { key: string; environment: string; requirements: string[]; size: number; lastUsed: string }[];
  missingSystemPackages: { name: string; sessions: number; lastAskedAt: string }[];
}
