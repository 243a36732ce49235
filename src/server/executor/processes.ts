import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statfsSync } from 'node:fs';

/** How often the memory of the sessions' processes is summed (where no cgroup does it). */
export const MEMORY_POLL_MS = 100;

interface ProcessInfo {
  ppid: number;
  comm: string;
  /** Resident pages. */
  rss: number;
}

/** Every process on the machine, by pid: one pass over /proc. */
function processes(): Map<number, ProcessInfo> {
  const all = new Map<number, ProcessInfo>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // comm may hold spaces and parentheses, so the fields start after the last ')':
    // state is fields[0], ppid [1], rss in pages [21].
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    all.set(Number(entry), { ppid: Number(fields[1]), comm: stat.slice(stat.indexOf('(') + 1, close), rss: Number(fields[21]) });
  }
  return all;
}

/**
 * The processes descended from `root`, itself included. A session's code cannot leave this tree:
 * setsid() leaves the process group, but not the parent; an orphan is adopted by the sandbox's
 * own init (bubblewrap, pid 1 of the session's pid namespace), which is in the tree.
 */
function descendants(root: number, all: Map<number, ProcessInfo>, children = childrenOf(all)): number[] {
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    if (!all.has(pid)) continue;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * The sandbox's own init: the child of the launcher `root` (the outer bubblewrap) that is pid 1
 * of a pid namespace other than this server's, or undefined while the sandbox is not up. Only
 * a direct child counts: deeper down is the session's code, which may make namespaces of its
 * own (`unshare -Urp`) with a process named bwrap at their pid 1, and entering those as root
 * would run the server's tools in a mount namespace the session built.
 */
export function sandboxInit(root: number): number | undefined {
  const ours = nsOf(process.pid);
  const all = processes();
  const children = childrenOf(all).get(root) ?? [];
  return children.find((pid) => all.get(pid)?.comm === 'bwrap' && nsOf(pid) !== ours && nsOf(pid) !== undefined && isPidOne(pid));
}

function nsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is 1 in its own pid namespace (NSpid's last field). */
function isPidOne(pid: number): boolean {
  try {
    return /^NSpid:.*\s1$/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function childrenOf(all: Map<number, ProcessInfo>): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const [pid, p] of all) {
    const list = children.get(p.ppid);
    if (list) list.push(pid);
    else children.set(p.ppid, [pid]);
  }
  return children;
}

/**
 * SIGTERM to the session's own processes but not to bubblewrap: bwrap dies of SIGTERM and its
 * --die-with-parent would turn that into SIGKILL, leaving the code no chance to save its work.
 * Returns how many were signalled: none while the sandbox is still being set up, when there is
 * no code yet that could save anything.
 */
export function terminateInside(root: number): number {
  const all = processes();
  let signalled = 0;
  for (const pid of descendants(root, all)) {
    if (all.get(pid)?.comm === 'bwrap') continue;
    try {
      process.kill(pid, 'SIGTERM');
      signalled++;
    } catch {
      // Gone in the meantime.
    }
  }
  return signalled;
}

/** The pids of the processes whose real uid is `uid`. */
export function processesOf(uid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'));
      if (m && Number(m[1]) === uid) pids.push(Number(entry));
    } catch {
      // Gone in the meantime.
    }
  }
  return pids;
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

/** Bytes held by the memory-backed file systems of a sandbox (/tmp, /dev with /dev/shm), seen through one of its processes. */
function tmpfsBytes(pid: number): number {
  let total = 0;
  for (const path of ['tmp', 'dev/shm']) {
    try {
      const fs = statfsSync(`/proc/${pid}/root/${path}`);
      total += (fs.blocks - fs.bfree) * fs.bsize;
    } catch {
      // Not there, or the process is gone.
    }
  }
  return total;
}

interface Watched {
  limitBytes: number;
  exceeded: () => void;
  /** The kernel's count of processes it killed for memory, where a cgroup holds the session. */
  oomKills?: () => number;
  /** Count the sandbox's tmpfs too (its /tmp and /dev/shm are memory). */
  sandboxed: boolean;
}

/**
 * Calls each watched session's callback when it is over its memory limit. Where a cgroup holds
 * the session, the kernel enforces the limit and this only notices that it killed a process (so
 * the whole session ends, with the reason). Elsewhere this is the limit: every tick sums the
 * resident memory of the session's process tree and what its sandbox's /tmp and /dev/shm hold.
 * One scan of /proc per tick serves every running session.
 */
export class MemoryWatch {
  private readonly watched = new Map<number, Watched>();
  private timer: NodeJS.Timeout | undefined;

  /** Watches the session whose first process is `root`; returns the function that stops watching it. */
  watch(root: number, w: Watched): () => void {
    this.watched.set(root, w);
    this.timer ??= setInterval(() => this.tick(), MEMORY_POLL_MS).unref();
    return () => {
      this.watched.delete(root);
      if (this.watched.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  private tick(): void {
    const polled = [...this.watched].filter(([, w]) => !w.oomKills);
    for (const [, w] of this.watched) if (w.oomKills && w.oomKills() > 0) w.exceeded();
    if (polled.length === 0) return;
    const all = processes();
    const children = childrenOf(all);
    const size = pageSize();
    for (const [root, w] of polled) {
      const tree = descendants(root, all, children);
      let bytes = tree.reduce((sum, pid) => sum + all.get(pid)!.rss * size, 0);
      const inside = w.sandboxed ? tree.find((pid) => all.get(pid)!.comm !== 'bwrap') : undefined;
      if (inside !== undefined) bytes += tmpfsBytes(inside);
      if (bytes > w.limitBytes) w.exceeded();
    }
  }
}
