import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { formatSize } from '../../protocol/sizes.js';
import { describeCgroups, type Cgroups, type SessionCgroup } from './cgroups.js';
import type { LimitEnforcement, LogStream } from '../../protocol/types.js';
import type { ExecLimits, ExecResult, ExecSpec, Execution, Executor, LineSink } from './executor.js';
import { CoreSets } from './cores.js';
import { GpuPool } from './gpus.js';
import { LineSplitter } from './line-splitter.js';
import { MEMORY_POLL_MS, MemoryWatch, sandboxInit, terminateInside } from './processes.js';
import { GROUP_FD, identityFiles, PASSWD_FD } from './sandbox.js';
import { DEFAULT_MAX_PROCESSES, enterCommand, launchCommand, type LaunchSettings } from './launch.js';
import type { UidPool } from './uids.js';
import { formatUidRange } from '../../protocol/uid-range.js';

export const STOP_GRACE_MS = 10_000;
/** How long the end of a run waits for its cgroup to empty before leaving it to the next start. */
const CGROUP_REMOVE_TRIES = 50;
const CGROUP_REMOVE_WAIT_MS = 100;

/** The launch's settings (launch.ts), and what the local executor holds for each run. */
export interface LocalExecutorOptions extends LaunchSettings {
  stopGraceMs?: number;
  /**
   * The uids sandboxed sessions run as, one each; only a server running as root can switch.
   * Undefined: the server's own uid.
   */
  uids?: UidPool;
  /** The kernel's limits, where the server can make cgroups; undefined: polling (with the reason). */
  cgroups?: Cgroups;
  cgroupsReason?: string;
  /** This machine's GPUs, handed out one session at a time (default: none). */
  gpus?: number;
}

/** What launchFor() gives another runner: the launch, the uid it runs as, and how to give that back. */
export interface Launch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  identity?: { passwd: string; group: string };
  uid?: number;
  release(): Promise<void>;
}

/** What one run holds until it has ended: its cgroup and its uid, given back in that order, once. */
interface Holdings {
  uid?: number;
  cgroup?: SessionCgroup;
  /** The cores it is pinned to (where no cgroup caps its CPU time). */
  cores?: number[];
  /** Placed by a scheduler (Slurm), which caps its CPUs itself: no pinning here. */
  placed?: boolean;
  released?: Promise<void>;
}

let runs = 0;

/**
 * Runs each session as a local process group, inside bubblewrap when it is available, in a
 * cgroup of its own where the server can make one. Inside, the command goes through prlimit
 * (memory, processes, file size, no core files), taskset (CPUs, where no cgroup caps them) and,
 * under a root server, setpriv (the session's own uid, no groups, no new privileges) before Python.
 */
export class LocalExecutor implements Executor {
  readonly sandboxed: boolean;
  readonly ownUids: boolean;
  readonly enforcement: LimitEnforcement;
  readonly queues = false;
  readonly admission: GpuPool;
  private readonly memory = new MemoryWatch();

  constructor(private readonly options: LocalExecutorOptions) {
    this.sandboxed = options.bubblewrap !== undefined;
    this.ownUids = this.sandboxed && options.uids !== undefined;
    this.enforcement = {
      memory: options.cgroups ? describeCgroups(options.cgroups) : `polling every ${MEMORY_POLL_MS} ms`,
      ...(options.cgroups ? {} : { fallbackReason: options.cgroupsReason ?? 'no cgroups' }),
      ...(this.ownUids ? { uids: formatUidRange(options.uids!.range) } : {}),
    };
    this.admission = new GpuPool(options.gpus ?? 0);
  }

  private readonly cores = new CoreSets(availableParallelism());

  /**
   * The launch of `spec` as a command line and environment, for another runner (a Slurm job on a
   * node): the same sandbox, uid, limits and runtime as start() gives, without a cgroup (the
   * scheduler makes its own). `release` gives the uid back once the run is over.
   */
  launchFor(spec: ExecSpec): Launch {
    const held: Holdings = { placed: true };
    if (this.ownUids) {
      held.uid = this.options.uids!.take();
      if (held.uid === undefined) throw new Error(`every session uid (${this.enforcement.uids}) is in use: give the server more with --session-uids`);
      this.grantWritable(spec, held.uid);
    }
    const { command, args, env } = this.command(spec, held);
    const identity = this.sandboxed ? identityFiles(held.uid ?? process.getuid?.() ?? 0) : undefined;
    return { command, args, env, identity, uid: held.uid, release: () => this.release(held) };
  }

  /**
   * Holds `uid` again for a run that went on while the server was away (a Slurm job re-attached):
   * no other session is given it until the returned release.
   */
  reclaim(uid: number | undefined): () => Promise<void> {
    if (uid === undefined || !this.options.uids) return () => Promise.resolve();
    this.options.uids.claim(uid);
    const held: Holdings = { uid, placed: true };
    return () => this.release(held);
  }

  start(spec: ExecSpec, onLines: LineSink): Execution {
    const startedAt = Date.now();
    const held: Holdings = {};
    try {
      if (this.ownUids) {
        held.uid = this.options.uids!.take();
        if (held.uid === undefined) throw new Error(`every session uid (${this.enforcement.uids}) is in use: give the server more with --session-uids`);
        this.grantWritable(spec, held.uid);
      }
      held.cgroup = this.options.cgroups?.create(`run-${process.pid}-${++runs}`, {
        memoryBytes: spec.limits?.memoryBytes,
        cpus: spec.limits?.cpus,
        maxProcesses: this.options.maxProcesses ?? DEFAULT_MAX_PROCESSES,
      });
    } catch (err) {
      const release = this.release(held);
      return { result: release.then(() => failedStart(startedAt, (err as Error).message)), stop: () => {} };
    }
    return this.run(spec, onLines, held, startedAt);
  }

  private run(spec: ExecSpec, onLines: LineSink, held: Holdings, startedAt: number): Execution {
    const limits = spec.limits ?? {};
    const { command, args, env, cwd } = this.command(spec, held);
    const identity = this.sandboxed ? identityFiles(held.uid ?? process.getuid?.() ?? 0) : undefined;
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe', ...(identity ? (['pipe', 'pipe'] as const) : [])] });
    if (identity) {
      for (const [fd, data] of [[PASSWD_FD, identity.passwd], [GROUP_FD, identity.group]] as const) {
        const pipe = child.stdio[fd] as Writable | null;
        pipe?.on('error', () => {}).end(data);
      }
    }
    // How it ends, when the platform ends it: by the user's stop, or by a limit (with the reason).
    let stopped = false;
    let limitHit: string | undefined;
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const lastErrors: string[] = [];
    const sink: LineSink = (stream, lines) => {
      if (stream === 'stderr') {
        lastErrors.push(...lines.slice(-5));
        lastErrors.splice(0, lastErrors.length - 5);
      }
      onLines(stream, lines);
    };
    const killAll = () => {
      signalGroup(child.pid, 'SIGKILL');
      held.cgroup?.killAll();
    };
    const terminate = () => {
      if (!this.sandboxed || !child.pid) return signalGroup(child.pid, 'SIGTERM');
      // Stopped before the code started (the sandbox is still being set up): nothing to wait for.
      if (terminateInside(child.pid) === 0) killAll();
    };
    /** SIGTERM, then SIGKILL after the grace period; false when it was already ending. */
    const stop = (limit?: string): boolean => {
      if (stopped || limitHit) return false;
      if (limit) limitHit = limit;
      else stopped = true;
      terminate();
      killTimer = setTimeout(killAll, this.options.stopGraceMs ?? STOP_GRACE_MS);
      killTimer.unref();
      return true;
    };
    const { memoryBytes, wallMs } = limits;
    const overMemory = () => {
      if (stopped || limitHit || !memoryBytes) return;
      limitHit = memoryReason(memoryBytes);
      // Out of memory is not waited for: SIGKILL at once.
      killAll();
    };
    const unwatchMemory =
      memoryBytes && child.pid
        ? this.memory.watch(child.pid, { limitBytes: memoryBytes, exceeded: overMemory, oomKills: held.cgroup?.oomKills, sandboxed: this.sandboxed })
        : () => {};
    const wallTimer = wallMs
      ? setTimeout(() => (timedOut = stop(`time limit ${Math.round(wallMs / 1000)} s reached`)), wallMs).unref()
      : undefined;
    const unwatch = () => {
      unwatchMemory();
      clearTimeout(wallTimer);
    };
    const result = new Promise<ExecResult>((resolve) => {
      const outputs = [pipeLines(child.stdout!, 'stdout', sink), pipeLines(child.stderr!, 'stderr', sink)];
      child.on('error', (err) => {
        unwatch();
        void this.release(held).then(() => resolve({ ...failedStart(startedAt, err.message), stopped }));
      });
      child.on('exit', () => {
        clearTimeout(killTimer);
        unwatch();
        // Orphans the code left behind go with it (and with them, the pipes they hold).
        killAll();
      });
      child.on('close', (code, signal) => {
        // The kernel killed a process of it for memory; or RLIMIT_DATA made an allocation fail
        // inside Python (a MemoryError).
        if (!limitHit && memoryBytes && ((held.cgroup?.oomKills() ?? 0) > 0 || (code !== 0 && lastErrors.some((l) => /^MemoryError\b/.test(l))))) {
          limitHit = memoryReason(memoryBytes);
        }
        void Promise.all([...outputs, this.release(held)]).then(() =>
          resolve({ exitCode: code, signal, timedOut, stopped, startedAt, endedAt: Date.now(), ...(limitHit ? { limit: limitHit } : {}) }),
        );
      });
    });
    return {
      result,
      stop: (limit) => void stop(limit),
      enter: (argv, sink, timeoutMs) => this.enter(child.pid, held, limits, argv, sink, timeoutMs),
    };
  }

  /** `khd exec`: `argv` inside the sandbox of the run whose launcher is `root` (see Execution.enter). */
  private enter(root: number | undefined, held: Holdings, limits: ExecLimits, argv: string[], onLines: LineSink, timeoutMs: number): Execution | undefined {
    if (!this.sandboxed || held.uid === undefined || root === undefined || held.released) return undefined;
    const target = sandboxInit(root);
    if (target === undefined) return undefined;
    const command = enterCommand(target, argv, this.options, { memoryBytes: limits.memoryBytes, fileBytes: limits.fileBytes }, { uid: held.uid, cgroupProcs: held.cgroup?.procsFiles });
    const startedAt = Date.now();
    const child = spawn(command[0]!, command.slice(1), { env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8' }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let timedOut = false;
    let stopped = false;
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup(child.pid, 'SIGKILL');
    }, timeoutMs).unref();
    const result = new Promise<ExecResult>((resolve) => {
      const outputs = [pipeLines(child.stdout!, 'stdout', onLines), pipeLines(child.stderr!, 'stderr', onLines)];
      child.on('error', (err) => {
        clearTimeout(timer);
        resolve(failedStart(startedAt, err.message));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        void Promise.all(outputs).then(() => resolve({ exitCode: code, signal, timedOut, stopped, startedAt, endedAt: Date.now() }));
      });
    });
    return {
      result,
      stop: () => {
        stopped = true;
        signalGroup(child.pid, 'SIGKILL');
      },
    };
  }

  /** Gives back what a run held once nothing of it runs any more: its cgroup, then its uid; once. */
  private release(held: Holdings): Promise<void> {
    held.released ??= this.giveBack(held);
    return held.released;
  }

  private async giveBack(held: Holdings): Promise<void> {
    if (held.cores) this.cores.release(held.cores);
    if (held.cgroup) {
      for (let i = 0; i < CGROUP_REMOVE_TRIES && !held.cgroup.remove(); i++) {
        held.cgroup.killAll();
        await new Promise((resolve) => setTimeout(resolve, CGROUP_REMOVE_WAIT_MS));
      }
    }
    if (held.uid !== undefined) await this.options.uids!.release(held.uid);
  }

  /**
   * The work folder's folders and the writable mounts belong to the session's uid, so it can
   * write beside its code (whose files stay root's). They were laid out by the server and no
   * session has run in them yet.
   */
  private grantWritable(spec: ExecSpec, uid: number): void {
    const give = (dir: string) => {
      chownSync(dir, uid, uid);
      for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) give(join(dir, entry.name));
    };
    give(spec.workDir);
    // bwrap enters it before dropping to the session uid, as root without DAC override.
    chmodSync(spec.workDir, 0o755);
    for (const m of spec.mounts) if (m.writable) chownSync(m.host, uid, uid);
  }

  /**
   * The launch of `spec` for what the run holds: its cores taken here where nothing else caps its
   * CPUs (no cgroup's cpu controller, not placed by a scheduler), then the pure part (launch.ts).
   */
  private command(spec: ExecSpec, held: Holdings) {
    const limits = spec.limits ?? {};
    const cpusCapped = held.cgroup !== undefined && this.options.cgroups!.controllers.includes('cpu');
    if (!cpusCapped && !held.placed && limits.cpus && limits.cpus < availableParallelism()) held.cores = this.cores.take(limits.cpus);
    const datasetPath = spec.datasetName && !this.sandboxed ? datasetView(spec) : undefined;
    return launchCommand(spec, this.options, { uid: held.uid, cores: held.cores, cgroupProcs: held.cgroup?.procsFiles, datasetPath });
  }
}

function failedStart(startedAt: number, error: string): ExecResult {
  return { exitCode: null, signal: null, timedOut: false, stopped: false, startedAt, endedAt: Date.now(), error };
}

function memoryReason(bytes: number): string {
  return `out of memory (limit ${formatSize(bytes)})`;
}

/** Unsandboxed, DATASET_PATH is a folder of links to the parts the session may use. */
function datasetView(spec: ExecSpec): string {
  const view = join(dirname(spec.workDir), 'dataset');
  mkdirSync(view, { recursive: true });
  for (const part of spec.datasetParts) {
    const link = join(view, part.name);
    if (!existsSync(link)) symlinkSync(part.host, link);
  }
  return view;
}

function pipeLines(stream: Readable, name: LogStream, onLines: LineSink): Promise<void> {
  const splitter = new LineSplitter();
  stream.on('data', (chunk: Buffer) => onLines(name, splitter.push(chunk)));
  return new Promise((resolve) => {
    stream.on('close', () => {
      onLines(name, splitter.end());
      resolve();
    });
  });
}

/** A signal to the process group `pgid` (the session's), if it is still there. */
function signalGroup(pgid: number | undefined, signal: NodeJS.Signals): void {
  try {
    if (pgid) process.kill(-pgid, signal);
  } catch {
    // The group is already gone.
  }
}
