import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Kernel-enforced limits for sessions: one control group per run, in cgroup v2 (the unified
 * hierarchy of current systems) or v1 (one hierarchy per controller, as on older and hybrid
 * systems), whichever this machine gives the memory controller to. Memory counts everything a
 * session's processes hold, setsid'd ones and the tmpfs pages of its /tmp and /dev/shm
 * included, and the kernel refuses it more; processes and CPU time are capped the same way.
 */

export interface CgroupLimits {
  memoryBytes?: number;
  /** CPU time, in CPUs' worth (a quota per period). */
  cpus?: number;
  maxProcesses?: number;
}

/** The controllers khd uses, in the order it names them. */
const WANTED = ['memory', 'pids', 'cpu'] as const;
type Controller = (typeof WANTED)[number];

const CPU_PERIOD_US = 100_000;

export interface SessionCgroup {
  /** The `cgroup.procs` files a process writes its pid to, to enter it (one per hierarchy). */
  readonly procsFiles: string[];
  /** How many times the kernel killed a process in it for memory. */
  oomKills(): number;
  /** SIGKILL to every process in it. */
  killAll(): void;
  /** Removes it; false while a process is still in it. */
  remove(): boolean;
}

export interface Cgroups {
  readonly version: 1 | 2;
  /** The limits the kernel enforces here. */
  readonly controllers: Controller[];
  create(name: string, limits: CgroupLimits): SessionCgroup;
}

/** What is found on this machine: cgroups that work, or why there are none. */
export type CgroupDetection = { cgroups: Cgroups } | { reason: string };

interface Mount {
  root: string;
  point: string;
  fstype: string;
  options: string[];
}

function mounts(mountinfo: string): Mount[] {
  return mountinfo.split('\n').flatMap((line) => {
    const [left, right] = line.split(' - ');
    if (!left || !right) return [];
    const f = left.split(' ');
    const [fstype, , superOptions] = right.split(' ');
    return [{ root: unescape(f[3]!), point: unescape(f[4]!), fstype: fstype!, options: (superOptions ?? '').split(',') }];
  });
}

/** mountinfo escapes spaces and the like as \ooo. */
function unescape(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function write(file: string, value: string): void {
  writeFileSync(file, value);
}

function pidsIn(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

function counter(file: string, key: string): number {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Whether the server process `pid` still runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Empties and removes the groups a server that is gone left under `parent` (its sessions died
 * with it). Each group is named after the server that made it (`run-PID-N`): another server on
 * this machine keeps its own.
 */
function sweep(parent: string): void {
  for (const entry of readdirSync(parent, { withFileTypes: true })) {
    const owner = /^(?:run|probe)-(\d+)(?:-|$)/.exec(entry.name);
    if (!entry.isDirectory() || !owner || alive(Number(owner[1]))) continue;
    const dir = join(parent, entry.name);
    killPids(pidsIn(dir));
    try {
      rmdirSync(dir);
    } catch {
      // Still emptying: left for the next start.
    }
  }
}

/** cgroup v2: one hierarchy; the server's groups under `<mount>/khd`. */
class CgroupsV2 implements Cgroups {
  readonly version = 2;

  constructor(
    private readonly parent: string,
    public controllers: Controller[],
  ) {}

  drop(c: Controller): void {
    this.controllers = this.controllers.filter((x) => x !== c);
  }

  create(name: string, limits: CgroupLimits): SessionCgroup {
    const dir = join(this.parent, name);
    mkdirSync(dir, { recursive: true });
    try {
      this.limit(dir, limits);
    } catch (err) {
      removeDir(dir);
      throw err;
    }
    return {
      procsFiles: [join(dir, 'cgroup.procs')],
      oomKills: () => counter(join(dir, 'memory.events'), 'oom_kill'),
      killAll: () => {
        if (existsSync(join(dir, 'cgroup.kill'))) write(join(dir, 'cgroup.kill'), '1');
        else killPids(pidsIn(dir));
      },
      remove: () => removeDir(dir),
    };
  }

  private limit(dir: string, limits: CgroupLimits): void {
    const has = (c: Controller) => this.controllers.includes(c);
    const set = (file: string, value: string) => existsSync(join(dir, file)) && write(join(dir, file), value);
    if (has('memory') && limits.memoryBytes) {
      write(join(dir, 'memory.max'), String(limits.memoryBytes));
      set('memory.swap.max', '0');
      // One process out of memory ends them all, as the session ends.
      set('memory.oom.group', '1');
    }
    if (has('pids') && limits.maxProcesses) write(join(dir, 'pids.max'), String(limits.maxProcesses));
    if (has('cpu') && limits.cpus) write(join(dir, 'cpu.max'), `${Math.round(limits.cpus * CPU_PERIOD_US)} ${CPU_PERIOD_US}`);
  }
}

/** cgroup v1: a hierarchy per controller; the server's groups under `<hierarchy>/<own group>/khd`. */
class CgroupsV1 implements Cgroups {
  readonly version = 1;

  constructor(private readonly parents: Map<Controller, string>) {}

  get controllers(): Controller[] {
    return WANTED.filter((c) => this.parents.has(c));
  }

  drop(c: Controller): void {
    this.parents.delete(c);
  }

  create(name: string, limits: CgroupLimits): SessionCgroup {
    const dirs = new Map<Controller, string>();
    for (const [c, parent] of this.parents) {
      const dir = join(parent, name);
      // cpu and cpuacct may share a hierarchy with another wanted controller: one group there.
      if (![...dirs.values()].includes(dir)) mkdirSync(dir, { recursive: true });
      dirs.set(c, dir);
    }
    const unique = [...new Set(dirs.values())];
    try {
      this.limit(dirs, limits);
    } catch (err) {
      unique.forEach(removeDir);
      throw err;
    }
    const memory = dirs.get('memory')!;
    return {
      procsFiles: unique.map((d) => join(d, 'cgroup.procs')),
      oomKills: () => counter(join(memory, 'memory.oom_control'), 'oom_kill'),
      killAll: () => killPids(pidsIn(memory)),
      remove: () => unique.map(removeDir).every(Boolean),
    };
  }

  private limit(dirs: Map<Controller, string>, limits: CgroupLimits): void {
    const memory = dirs.get('memory')!;
    if (limits.memoryBytes) {
      write(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // Memory and swap together, where the kernel accounts swap: no way around the limit by swapping.
      if (existsSync(join(memory, 'memory.memsw.limit_in_bytes'))) write(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
    }
    const pids = dirs.get('pids');
    if (pids && limits.maxProcesses) write(join(pids, 'pids.max'), String(limits.maxProcesses));
    const cpu = dirs.get('cpu');
    if (cpu && limits.cpus) {
      write(join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      write(join(cpu, 'cpu.cfs_quota_us'), String(Math.round(limits.cpus * CPU_PERIOD_US)));
    }
  }
}

function removeDir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

export interface DetectOptions {
  /** /proc/self/mountinfo and /proc/self/cgroup, read from here (tests give a fake machine). */
  mountinfo?: string;
  selfCgroup?: string;
  /** Where the mount points of `mountinfo` are found (tests: a temporary folder). */
  fsRoot?: string;
  /** The pid moved out of the way in cgroup v2 (see enableV2). */
  pid?: number;
}

const PARENT = 'khd';

/**
 * Finds the cgroup hierarchy that has the memory controller, makes the server's parent group in
 * it, and checks it can make a child there. Only root can; anything missing is a reason.
 */
export function detectCgroups(options: DetectOptions = {}): CgroupDetection {
  const fsRoot = options.fsRoot ?? '';
  let mountinfo: string;
  let selfCgroup: string;
  try {
    mountinfo = options.mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8');
    selfCgroup = options.selfCgroup ?? readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return { reason: 'no /proc/self/mountinfo (not Linux?)' };
  }
  const all = mounts(mountinfo);
  try {
    const v2 = all.find((m) => m.fstype === 'cgroup2');
    const v2Controllers = v2 ? readFileSync(join(fsRoot + v2.point, 'cgroup.controllers'), 'utf8').trim().split(/\s+/) : [];
    if (v2 && v2Controllers.includes('memory')) return { cgroups: enableV2(fsRoot + v2.point, v2Controllers, options.pid ?? process.pid) };
    const own = new Map(
      selfCgroup
        .split('\n')
        .filter(Boolean)
        .flatMap((line) => {
          const [, list, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
          return (list ?? '').split(',').map((c) => [c, path ?? '/'] as const);
        }),
    );
    const parents = new Map<Controller, string>();
    for (const c of WANTED) {
      const m = all.find((x) => x.fstype === 'cgroup' && x.options.includes(c));
      const path = own.get(c);
      if (!m || path === undefined) continue;
      const relative = path.startsWith(m.root) ? path.slice(m.root.length) : path;
      const parent = join(fsRoot + m.point, relative, PARENT);
      mkdirSync(parent, { recursive: true });
      sweep(parent);
      parents.set(c, parent);
    }
    if (!parents.has('memory')) return { reason: 'this machine mounts no memory cgroup controller' };
    return { cgroups: probe(new CgroupsV1(parents)) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { reason: e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? `no permission to make cgroups (${e.code})` : e.message };
  }
}

/**
 * cgroup v2 gives controllers to a group's children only when the group itself holds no process
 * (the root excepted): the server's group is `<mount>/khd`, its sessions' groups below it. Where
 * the mount's root is not the machine's (a container) and holds this process, the process first
 * moves into a leaf of its own.
 */
function enableV2(mount: string, available: string[], pid: number): Cgroups {
  const controllers = WANTED.filter((c) => available.includes(c));
  const enable = (dir: string) => write(join(dir, 'cgroup.subtree_control'), controllers.map((c) => `+${c}`).join(' '));
  try {
    enable(mount);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
    const leaf = join(mount, 'khd-server');
    mkdirSync(leaf, { recursive: true });
    write(join(leaf, 'cgroup.procs'), String(pid));
    enable(mount);
  }
  const parent = join(mount, PARENT);
  mkdirSync(parent, { recursive: true });
  sweep(parent);
  enable(parent);
  return probe(new CgroupsV2(parent, controllers));
}

let probes = 0;

/**
 * Makes a group with each limit and removes it, at start: a memory limit that cannot be written
 * means no cgroups (the error says why); a process or CPU limit that cannot (a kernel without
 * CPU bandwidth control) is left to the fallback for that limit alone.
 */
function probe<T extends Cgroups & { drop(c: Controller): void }>(cgroups: T): T {
  const attempt = (limits: CgroupLimits) => {
    const group = cgroups.create(`probe-${process.pid}-${++probes}`, limits);
    group.remove();
  };
  attempt({ memoryBytes: 64 * 1024 ** 2 });
  const optional: [Controller, CgroupLimits][] = [['pids', { maxProcesses: 16 }], ['cpu', { cpus: 1 }]];
  for (const [c, limits] of optional) {
    if (!cgroups.controllers.includes(c)) continue;
    try {
      attempt(limits);
    } catch {
      cgroups.drop(c);
    }
  }
  return cgroups;
}

/** `cgroup v1 (memory, pids, cpu)`: what `khd server` and `--show-limits` say. */
export function describeCgroups(cgroups: Cgroups): string {
  return `cgroup v${cgroups.version} (${cgroups.controllers.join(', ')})`;
}
