import { VERSION } from '../protocol/version.js';
import type { ServerInfo, UploadLimits, UploadPurpose } from '../protocol/types.js';
import { AuthService, type AuthOptions } from './auth/auth-service.js';
import { availableParallelism, totalmem } from 'node:os';
import { DEFAULT_DISK_CHECK_MS, DEFAULT_MAX_DISK_BYTES, DEFAULT_MAX_FILES, DEFAULT_MAX_LOG_BYTES, DEFAULT_MAX_WALL_MS, LOG_HEARTBEAT_MS, STALE_UPLOAD_MS, UPLOAD_LIMITS, type SessionLimits } from './config.js';
import { DataDir } from './data-dir.js';
import { DatasetService } from './datasets/dataset-service.js';
import type { Executor } from './executor/executor.js';
import { LogStore } from './logs/log-store.js';
import { SessionService } from './sessions/session-service.js';
import { AccountStore } from './store/accounts.js';
import { openDb, type Db } from './store/db.js';
import { DatasetStore } from './store/datasets.js';
import { SessionStore } from './store/sessions.js';
import { UploadStore } from './store/uploads.js';
import { SubmitStore } from './store/submits.js';
import { DiskWatch } from './sessions/disk-watch.js';
import { SessionEvents } from './sessions/session-events.js';
import { Scorer } from './scoring/scorer.js';
import { SubmitService } from './submits/submit-service.js';
import { UploadService } from './uploads/upload-service.js';
import { BlobStore } from './uploads/blob-store.js';
import { EnvironmentService } from './environments/environment-service.js';
import { resolvePython, type PythonInfo } from './executor/python.js';
import { EnvironmentStore } from './store/environments.js';

export interface ServicesOptions {
  dataDir: string;
  executor: Executor;
  auth?: AuthOptions;
  heartbeatMs?: number;
  submitPollMs?: number;
  /** Upload limits per purpose (default UPLOAD_LIMITS); tests make them small. */
  limits?: Partial<Record<UploadPurpose, UploadLimits>>;
  /** What one session may use at most (default: the machine's memory and CPUs, 3 days, 64 MiB of log, 20 GiB of disk). */
  sessionLimits?: Partial<SessionLimits>;
  now?: () => number;
  warn?: (message: string) => void;
  /** The default environment's interpreter (`khd server --python`; default: python3 on PATH). */
  python?: PythonInfo;
  /** Where package installs find packages: an index (the install then has network) and/or a wheelhouse. */
  pip?: { indexUrl?: string; findLinks?: string };
  /** Package layers unused this long are removed (default 14 days). */
  layerTtlMs?: number;
  /** GPUs one team's training sessions may hold at once (`--max-gpus-per-team`). */
  maxGpusPerTeam?: number;
}

/** Everything the HTTP layer calls, wired over one data dir; no HTTP in here. */
export interface Services {
  db: Db;
  dataDir: DataDir;
  auth: AuthService;
  accounts: AccountStore;
  datasets: DatasetService;
  uploads: UploadService;
  sessionStore: SessionStore;
  datasetStore: DatasetStore;
  uploadStore: UploadStore;
  sessions: SessionService;
  submitStore: SubmitStore;
  submits: SubmitService;
  logs: LogStore;
  /** What sessions' nsml runtimes reported, read through the untrusted reader. */
  events: SessionEvents;
  environments: EnvironmentService;
  /** Where sessions run (local or Slurm). */
  executor: Executor;
  info: ServerInfo;
  heartbeatMs: number;
  /**
   * Drops the uploads older than `olderThan` (default: STALE_UPLOAD_MS ago) that never became a
   * session or dataset, then the contents no upload names any more.
   */
  sweep(olderThan?: number): Promise<{ uploads: number; contents: number }>;
  /** Sweeps now and every STALE_UPLOAD_MS / 4 until close. */
  startSweeping(): void;
  close(): Promise<void>;
}

export function createServices(options: ServicesOptions): Services {
  const now = options.now ?? Date.now;
  const dataDir = new DataDir(options.dataDir);
  dataDir.create();
  const db = openDb(dataDir.database);
  const accounts = new AccountStore(db, now);
  const uploadStore = new UploadStore(db, now);
  const datasetStore = new DatasetStore(db, now);
  const sessionStore = new SessionStore(db, now);
  const logs = new LogStore(dataDir.logs, now);
  let sweeper: NodeJS.Timeout | undefined;
  const submitStore = new SubmitStore(db, now);
  const events = new SessionEvents();
  const sessionLimits: SessionLimits = {
    maxMemoryBytes: totalmem(), maxCpus: availableParallelism(), maxWallMs: DEFAULT_MAX_WALL_MS, maxLogBytes: DEFAULT_MAX_LOG_BYTES,
    maxDiskBytes: DEFAULT_MAX_DISK_BYTES, maxFiles: DEFAULT_MAX_FILES, diskCheckMs: DEFAULT_DISK_CHECK_MS,
    ...options.sessionLimits,
  };
  const { diskCheckMs: _howOften, ...publicLimits } = sessionLimits;
  const environments = new EnvironmentService(new EnvironmentStore(db, now), options.executor, {
    root: dataDir.envs, defaultPython: options.python ?? resolvePython(), pipIndexUrl: options.pip?.indexUrl, pipFindLinks: options.pip?.findLinks,
    layerTtlMs: options.layerTtlMs, now, warn: options.warn ?? (() => {}),
  });
  const sessions = new SessionService({
    sessions: sessionStore, submits: submitStore, events, uploads: uploadStore, datasets: datasetStore, accounts, logs, executor: options.executor, environments,
    dataDir, diskWatch: new DiskWatch(dataDir.root, sessionLimits.diskCheckMs), maxGpusPerTeam: options.maxGpusPerTeam, now, warn: options.warn ?? (() => {}), limits: sessionLimits,
  });
  const blobs = new BlobStore(db, dataDir.blobs, now);
  const limits = { ...UPLOAD_LIMITS, ...options.limits };
  const uploads = new UploadService(uploadStore, sessionStore, sessions, blobs, dataDir, limits);
  const submits = new SubmitService({
    submits: submitStore, sessions: sessionStore, sessionService: sessions, datasets: datasetStore, accounts, events,
    scorer: new Scorer(options.executor), dataDir, now, warn: options.warn ?? (() => {}), pollMs: options.submitPollMs,
  });
  const sweep = async (olderThan = now() - STALE_UPLOAD_MS) => {
    const swept = await uploads.sweep(olderThan);
    await environments.sweep().catch((err: Error) => options.warn?.(`layer sweep failed: ${err.message}`));
    return { uploads: swept, contents: blobs.collect(olderThan) };
  };
  const sweepNow = () => void sweep().catch((err: Error) => options.warn?.(`upload sweep failed: ${err.message}`));
  return {
    db, dataDir, accounts, logs, events, environments, executor: options.executor, sessionStore, datasetStore, uploadStore, sessions, uploads, submitStore, submits,
    auth: new AuthService(accounts, { now, ...options.auth }),
    datasets: new DatasetService(datasetStore, uploadStore, dataDir, (sha) => blobs.path(sha), (id) => submitStore.counted(id).length > 0),
    info: {
      version: VERSION, gpus: options.executor.admission.gpus, sandbox: options.executor.sandboxed, limits: limits.session, sessionLimits: publicLimits,
      enforcement: options.executor.enforcement,
    },
    heartbeatMs: options.heartbeatMs ?? LOG_HEARTBEAT_MS,
    sweep,
    startSweeping() {
      sweepNow();
      sweeper = setInterval(sweepNow, STALE_UPLOAD_MS / 4);
      sweeper.unref();
    },
    async close() {
      clearInterval(sweeper);
      await sessions.shutdown();
      // After the sessions: each submit session that ended is decided before the store closes.
      await submits.close();
      if (db.open) {
        await blobs.close();
        db.close();
      }
    },
  };
}
