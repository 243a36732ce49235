import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** How often the memory of the sessions' processes is summed. */
export const MEMORY_POLL_MS = 100;

/**
 * Calls `fn` for every process on the machine with its comm and the fields of its /proc stat
 * after `(comm)`: state is fields[0], ppid [1], pgrp [2], rss in pages [21].
 */
function eachProcess(fn: (pid: number, fields: string[], comm: string) => void): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // comm may hold spaces and parentheses, so the fields start after the last ')'.
    const close = stat.lastIndexOf(')');
    fn(Number(entry), stat.slice(close + 2).split(' '), stat.slice(stat.indexOf('(') + 1, close));
  }
}

/**
 * SIGTERM to the session's own processes but not to bubblewrap: bwrap dies of SIGTERM and its
 * --die-with-parent would turn that into SIGKILL, leaving the code no chance to save its work.
 * The processes are the group's members other than the two bwrap processes (outer and init).
 */
export function terminateInside(pgid: number): void {
  eachProcess((pid, fields, comm) => {
    if (Number(fields[2]) !== pgid || comm === 'bwrap') return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Gone in the meantime.
    }
  });
}

let cachedPageSize: number | undefined;

/** The kernel's page size (rss in /proc is counted in pages): 4 KiB on x86, up to 64 KiB on arm64. */
function pageSize(): number {
  if (cachedPageSize === undefined) {
    try {
      cachedPageSize = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;
    } catch {
      cachedPageSize = 4096;
    }
  }
  return cachedPageSize;
}

/**
 * Sums the resident memory of each watched process group and calls its callback when over its
 * limit. One scan of /proc per tick serves every running session: the cost of a tick is the
 * number of processes on the machine, not that times the number of sessions.
 */
export class MemoryWatch {
  private readonly groups = new Map<number, { limitBytes: number; exceeded: () => void }>();
  private timer: NodeJS.Timeout | undefined;

  /** Watches the group `pgid`; returns the function that stops watching it. */
  watch(pgid: number, limitBytes: number, exceeded: () => void): () => void {
    this.groups.set(pgid, { limitBytes, exceeded });
    this.timer ??= setInterval(() => this.tick(), MEMORY_POLL_MS).unref();
    return () => {
      this.groups.delete(pgid);
      if (this.groups.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  private tick(): void {
    const pages = new Map<number, number>();
    eachProcess((_pid, fields) => {
      const pgrp = Number(fields[2]);
      if (this.groups.has(pgrp)) pages.set(pgrp, (pages.get(pgrp) ?? 0) + Number(fields[21]));
    });
    const size = pageSize();
    for (const [pgid, group] of this.groups) {
      if ((pages.get(pgid) ?? 0) * size > group.limitBytes) group.exceeded();
    }
  }
}
