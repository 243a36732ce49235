import { execFile } from 'node:child_process';
import { statfs } from 'node:fs/promises';

/** What a session's writable folders hold on disk. */
export interface DiskUse {
  /** Allocated bytes: a sparse file costs what it holds, a hard-linked file counts once. */
  bytes: number;
  /** Files, folders and links. */
  files: number;
}

function du(args: string[], paths: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('du', ['-s', '-c', ...args, '--', ...paths], { maxBuffer: 1024 * 1024 }, (err, stdout) => {
      // du exits 1 for a path it cannot read or that vanished, and still prints the total.
      const total = /^(\d+)\s+total$/m.exec(stdout);
      if (total) resolve(Number(total[1]));
      else reject(err ?? new Error(`du printed no total: ${stdout.slice(0, 200)}`));
    });
  });
}

/**
 * Bytes and entries on disk under `paths`, as `du` counts them (it follows no link). `du` runs as
 * a child, so a session with many files does not stall the server's event loop. A path that does
 * not exist counts 0.
 */
export async function diskUse(paths: string[]): Promise<DiskUse> {
  const [bytes, files] = await Promise.all([du(['-B1'], paths), du(['--inodes'], paths)]);
  return { bytes, files };
}

/** What the file system holding `root` has in use, all users together. */
async function usedOn(root: string): Promise<DiskUse> {
  const fs = await statfs(root);
  return { bytes: (fs.blocks - fs.bfree) * fs.bsize, files: fs.files - fs.ffree };
}

/** How often the file system under the data dir is asked how full it is (one statfs). */
const PRESSURE_POLL_MS = 100;
/**
 * How much the file system may fill before every session is measured at once: a 16th of the
 * smallest limit, at most 512 MiB of bytes or 10,000 files (the most a session can be over its
 * limit before it is measured, plus what it writes while it is).
 */
const PRESSURE_SHARE = 16;
const MAX_BYTE_STEP = 512 * 1024 ** 2;
const MAX_FILE_STEP = 10_000;

export interface DiskLimits {
  maxBytes: number;
  maxFiles: number;
}

interface Watched {
  paths: string[];
  limits: DiskLimits;
  busy: boolean;
  onOver: (what: 'bytes' | 'files', use: DiskUse) => void;
  onError: (err: Error) => void;
  reported: boolean;
}

/**
 * Keeps every running session's writable folders within its disk limits. Each is measured every
 * `checkMs` (du, as a child process), and at once, all of them, whenever the file system they are
 * on has filled by a step (PRESSURE_SHARE) since the last round: one statfs every
 * PRESSURE_POLL_MS serves all sessions, so a session writing fast is measured within a fraction
 * of a second of passing its limit instead of within `checkMs`.
 */
export class DiskWatch {
  private readonly watched = new Set<Watched>();
  private pressure: NodeJS.Timeout | undefined;
  private baseline: { bytes: number; files: number } | undefined;
  private polling: Promise<void> | undefined;

  constructor(
    /** A folder on the file system the sessions write to (the data dir). */
    private readonly root: string,
    private readonly checkMs: number,
    private readonly measure: (paths: string[]) => Promise<DiskUse> = diskUse,
    /** How full that file system is (tests give their own: other tests write to it too). */
    private readonly fileSystemUse: (root: string) => Promise<DiskUse> = usedOn,
    private readonly pollMs = PRESSURE_POLL_MS,
  ) {}

  /** Watches one session's folders; returns the function that stops watching them. */
  watch(paths: string[], limits: DiskLimits, onOver: Watched['onOver'], onError: Watched['onError']): () => void {
    const w: Watched = { paths, limits, busy: false, onOver, onError, reported: false };
    this.watched.add(w);
    const timer = setInterval(() => this.check(w), this.checkMs);
    timer.unref();
    this.pressure ??= setInterval(() => void this.poll(), this.pollMs).unref();
    return () => {
      clearInterval(timer);
      this.watched.delete(w);
      if (this.watched.size === 0) {
        clearInterval(this.pressure);
        this.pressure = undefined;
        this.baseline = undefined;
      }
    };
  }

  private check(w: Watched): void {
    if (w.busy || !this.watched.has(w)) return;
    w.busy = true;
    this.measure(w.paths).then(
      (use) => {
        w.busy = false;
        if (!this.watched.has(w)) return;
        const over = use.bytes > w.limits.maxBytes ? 'bytes' : use.files > w.limits.maxFiles ? 'files' : undefined;
        if (!over) return;
        this.watched.delete(w);
        w.onOver(over, use);
      },
      (err: Error) => {
        w.busy = false;
        if (this.watched.has(w) && !w.reported) w.onError(err);
        w.reported = true;
      },
    );
  }

  /**
   * Looks at the file system once: the first look sets where it starts from; a later one measures
   * every session now when it filled by more than a step since.
   */
  poll(): Promise<void> {
    this.polling ??= this.look().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async look(): Promise<void> {
    try {
      const now = await this.fileSystemUse(this.root);
      const base = this.baseline;
      if (!base) {
        this.baseline = now;
        return;
      }
      const limits = [...this.watched].map((w) => w.limits);
      if (limits.length === 0) return;
      const byteStep = Math.min(MAX_BYTE_STEP, ...limits.map((l) => l.maxBytes / PRESSURE_SHARE));
      const fileStep = Math.min(MAX_FILE_STEP, ...limits.map((l) => l.maxFiles / PRESSURE_SHARE));
      // Files deleted meanwhile lower the baseline, so filling again is noticed as soon.
      if (now.bytes - base.bytes < byteStep && now.files - base.files < fileStep) {
        this.baseline = { bytes: Math.min(base.bytes, now.bytes), files: Math.min(base.files, now.files) };
        return;
      }
      this.baseline = now;
      for (const w of this.watched) this.check(w);
    } catch {
      // No statfs (an unusual file system): the periodic measurements still run.
    }
  }
}
