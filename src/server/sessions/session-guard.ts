import { mkdir, rm } from 'node:fs/promises';
import { formatSize } from '../../protocol/sizes.js';
import type { SessionLimits } from '../config.js';
import type { LogStore } from '../logs/log-store.js';
import { diskUse, type DiskWatch } from './disk-watch.js';
import type { SessionEvents } from './session-events.js';

export interface SessionGuardDeps {
  diskWatch: DiskWatch;
  events: SessionEvents;
  logs: LogStore;
  limits: SessionLimits;
  warn: (message: string) => void;
}

/** Ends the session at a limit: a last line in its log, and the reason on its end. */
export type StopAt = (reason: string, detail: string) => void;

/**
 * What a running session writes to the server is watched: its folders against the disk and
 * file limits (work folder, checkpoints and events together), its events file against being
 * replaced or growing past its cap; and what a session stopped at its disk limit wrote is
 * removed, not left for `khd rm`.
 */
export class SessionGuard {
  constructor(private readonly d: SessionGuardDeps) {}

  get diskReason(): string {
    return `disk limit ${formatSize(this.d.limits.maxDiskBytes)} reached`;
  }

  get filesReason(): string {
    return `file limit ${this.d.limits.maxFiles.toLocaleString('en')} reached`;
  }

  /** Watches one running session; returns the function that stops watching it. */
  watch(name: string, writable: string[], eventsFile: string, stopAt: StopAt): () => void {
    const max = this.d.limits;
    const together = ' (work folder, checkpoints and events together): the session is stopped';
    let watching = true;
    const unwatchDisk = this.d.diskWatch.watch(
      writable,
      { maxBytes: max.maxDiskBytes, maxFiles: max.maxFiles },
      (what) => stopAt(what === 'bytes' ? this.diskReason : this.filesReason, together),
      (err) => this.d.warn(`session ${name}: could not measure its disk use: ${err.message}`),
    );
    let reading = false;
    const eventsTimer = setInterval(() => {
      if (reading) return;
      reading = true;
      this.d.events
        .read(eventsFile)
        .then((state) => {
          if (state.problem && watching) stopAt(state.problem, ': the session is stopped');
        })
        .catch((err: Error) => this.d.warn(`session ${name}: could not read its events: ${err.message}`))
        .finally(() => (reading = false));
    }, max.diskCheckMs);
    eventsTimer.unref();
    return () => {
      watching = false;
      unwatchDisk();
      clearInterval(eventsTimer);
    };
  }

  /**
   * After a session ended with `limit`: a session stopped at its disk or file limit has its work
   * folder removed at once (its code is kept in the upload), and its checkpoints too when they
   * alone are over the limit; its log says which.
   */
  async afterEnd(sessionId: number, limit: string | undefined, work: string, checkpoints: string): Promise<void> {
    if (limit !== this.diskReason && limit !== this.filesReason) return;
    await rm(work, { recursive: true, force: true });
    const left = await diskUse([checkpoints]);
    const over = left.bytes > this.d.limits.maxDiskBytes || left.files > this.d.limits.maxFiles;
    if (over) {
      await rm(checkpoints, { recursive: true, force: true });
      await mkdir(checkpoints, { recursive: true });
    }
    const what = over ? ', and its checkpoints, which alone were over the limit' : '; its checkpoints are kept';
    this.d.logs.append(sessionId, 'stderr', [`khd: to free the disk, its work folder was removed${what}`]);
  }
}
