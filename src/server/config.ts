import type { SessionLimitsInfo, UploadLimits, UploadPurpose } from '../protocol/types.js';

export const TOKEN_TTL_MS = 30 * 24 * 3600 * 1000;
export const LOG_HEARTBEAT_MS = 15_000;
export const ADMIN_USER = 'admin';
/** Uploads never turned into a session or dataset are removed after this long. */
export const STALE_UPLOAD_MS = 24 * 3600 * 1000;

export const UPLOAD_LIMITS: Record<UploadPurpose, UploadLimits> = {
  session: {
    maxFiles: 20_000,
    maxTotalBytes: 1024 ** 3,
    maxFileBytes: 512 * 1024 ** 2,
    maxDepth: 32,
    maxPathLength: 1024,
  },
  // Datasets are pushed by organisers and may be large.
  dataset: {
    maxFiles: 2_000_000,
    maxTotalBytes: 512 * 1024 ** 3,
    maxFileBytes: 64 * 1024 ** 3,
    maxDepth: 64,
    maxPathLength: 4096,
  },
};

/** KHD2020's 300 MB, counted as `--model-size-limit 300MB` counts it (binary), so both read `300 MB`. */
export const DEFAULT_MODEL_SIZE_LIMIT = 300 * 1024 ** 2;
export const DEFAULT_SUBMIT_INTERVAL_MS = 3600 * 1000;
/** KHD's submit rules: nsml.paused() within 600 s, inference within an hour. */
export const DEFAULT_PAUSED_TIMEOUT_MS = 600 * 1000;
export const DEFAULT_INFER_TIMEOUT_MS = 3600 * 1000;

/**
 * What the server allows one session, whatever it asks for: a request above is clamped to it.
 * Memory and CPUs default to the machine's; time to three days; logs to 64 MiB (enough for
 * any training log, too little to carry a dataset out); disk to 20 GiB, measured every 5 s.
 */
export interface SessionLimits extends SessionLimitsInfo {
  /** How often a session's disk use is measured (the most it can overshoot is what it writes meanwhile). */
  diskCheckMs: number;
}

export const DEFAULT_MAX_WALL_MS = 3 * 24 * 3600 * 1000;
export const DEFAULT_MAX_LOG_BYTES = 64 * 1024 ** 2;
export const DEFAULT_MAX_DISK_BYTES = 20 * 1024 ** 3;
/** Files and folders one session may make (work folder, checkpoints and events together). */
export const DEFAULT_MAX_FILES = 1_000_000;
export const DEFAULT_DISK_CHECK_MS = 5000;
/**
 * The most the server reads of a session's events file (reports, saves, stages): a report a
 * step for 100,000 steps is ~15 MB. A file past it ends its session; what is past is never read.
 */
export const DEFAULT_MAX_EVENTS_BYTES = 64 * 1024 ** 2;
