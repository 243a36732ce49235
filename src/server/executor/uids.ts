import { readFileSync } from 'node:fs';
import { formatUidRange, type UidRange } from '../../protocol/uid-range.js';
import { processesOf } from './processes.js';

/**
 * Each running session gets a uid of its own, as judge systems (isolate) give each box: the
 * kernel's per-uid limits (RLIMIT_NPROC) and ownership are then the session's, not shared with
 * every other team's. Above the range Debian and systemd reserve (60000-65535), below where
 * subordinate uids (containers) start by default (100000).
 */
export const DEFAULT_SESSION_UIDS: UidRange = { first: 70000, count: 1000 };

/**
 * Why the range cannot be used: a uid or gid of it that an account or a container range of this
 * machine already has (`/etc/passwd`, `/etc/group`, `/etc/subuid`, `/etc/subgid`), or null.
 */
export function uidRangeConflict(range: UidRange, read: (file: string) => string = (f) => readFileSync(f, 'utf8')): string | null {
  const last = range.first + range.count - 1;
  const inRange = (n: number) => n >= range.first && n <= last;
  const text = (file: string) => {
    try {
      return read(file);
    } catch {
      return '';
    }
  };
  for (const file of ['/etc/passwd', '/etc/group']) {
    for (const line of text(file).split('\n')) {
      const [name, , id] = line.split(':');
      if (id !== undefined && inRange(Number(id))) return `${file} has '${name}' with id ${id}, inside the session uids ${formatUidRange(range)}`;
    }
  }
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    for (const line of text(file).split('\n')) {
      const [name, start, count] = line.split(':');
      if (start === undefined || count === undefined) continue;
      const from = Number(start);
      const to = from + Number(count) - 1;
      if (from <= last && to >= range.first) return `${file} gives '${name}' the ids ${from}-${to}, which overlap the session uids ${formatUidRange(range)}`;
    }
  }
  return null;
}

/** How often a released uid is checked for processes still running as it (zombies being reaped). */
const RELEASE_CHECK_MS = 100;
const RELEASE_TRIES = 50;

/**
 * The session uids: one is taken for each run and given back only once no process runs as it
 * any more, so a later session never shares a uid with one still running. A run's processes
 * end with its sandbox (its pid namespace, its cgroup); a process that still runs as the uid
 * after that is not this server's to kill (another server given the same range?): the uid is
 * then never handed out again, and the server says so.
 */
export class UidPool {
  private readonly free: number[];
  private readonly quarantined = new Set<number>();

  constructor(
    readonly range: UidRange,
    private readonly onQuarantine: (uid: number, pids: number[]) => void = () => {},
  ) {
    this.free = Array.from({ length: range.count }, (_, i) => range.first + i);
  }

  /**
   * A free uid, or undefined when every one is in use. A uid something already runs as (a
   * process this server did not start) is never handed out: it is quarantined instead.
   */
  take(): number | undefined {
    for (let uid = this.free.shift(); uid !== undefined; uid = this.free.shift()) {
      const running = processesOf(uid);
      if (running.length === 0) return uid;
      this.quarantine(uid, running);
    }
    return undefined;
  }

  /** Takes `uid` out of the free ones: a run holds it already (one re-attached after a restart). */
  claim(uid: number): void {
    const i = this.free.indexOf(uid);
    if (i !== -1) this.free.splice(i, 1);
  }

  private quarantine(uid: number, pids: number[]): void {
    this.quarantined.add(uid);
    this.onQuarantine(uid, pids);
  }

  get inUse(): number {
    return this.range.count - this.free.length - this.quarantined.size;
  }

  /** Gives `uid` back once nothing runs as it; resolves when it is back (or quarantined). */
  async release(uid: number): Promise<void> {
    let left: number[] = [];
    for (let i = 0; i < RELEASE_TRIES; i++) {
      left = processesOf(uid);
      if (left.length === 0) {
        this.free.push(uid);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, RELEASE_CHECK_MS));
    }
    this.quarantine(uid, left);
  }
}
