import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { formatSize } from '../../protocol/sizes.js';
import type { LogStream } from '../../protocol/types.js';
import type { ExecLimits, ExecResult, ExecSpec, Execution, Executor, LineSink } from './executor.js';
import { MemoryWatch, terminateInside } from './processes.js';
import { LineSplitter } from './line-splitter.js';
import { bubblewrapArgs, SANDBOX_DATA_ROOT, SANDBOX_RUNTIME_DIR } from './sandbox.js';

export const STOP_GRACE_MS = 10_000;
/** The uid sessions run as under a root server: nobody. */
export const DEFAULT_SESSION_UID = 65534;
export const DEFAULT_MAX_PROCESSES = 1024;
export const DEFAULT_TMP_BYTES = 1024 ** 3;

// util-linux, present on every Debian system (`Priority: required`).
const PRLIMIT = '/usr/bin/prlimit';
const TASKSET = '/usr/bin/taskset';
const SETPRIV = '/usr/bin/setpriv';

export interface LocalExecutorOptions {
  python: { executable: string; prefixes: string[] };
  runtimeDir: string;
  /** Path of `bwrap`, or undefined to run sessions as plain processes (`--no-sandbox`). */
  bubblewrap: string | undefined;
  stopGraceMs?: number;
  /**
   * The uid (and gid) sandboxed sessions run as; only a server running as root can switch,
   * and it does by default (DEFAULT_SESSION_UID). Undefined: the server's own uid.
   */
  sessionUid?: number;
  /** Processes and threads a session may have (RLIMIT_NPROC of the session uid). */
  maxProcesses?: number;
  /** Size of the sandbox's private /tmp. */
  tmpBytes?: number;
}

/** Whether the tools the launch chain needs are here: each missing one is named. */
export function missingLaunchTools(): string[] {
  return [PRLIMIT, TASKSET, SETPRIV].filter((t) => !existsSync(t));
}

/**
 * Runs each session as a local process group, inside bubblewrap when it is available. Inside,
 * the command goes through prlimit (memory, processes, no core files), taskset (CPUs) and,
 * under a root server, setpriv (the session uid, no groups, no new privileges) before Python.
 */
export class LocalExecutor implements Executor {
  readonly sandboxed: boolean;
  readonly sessionUid: number | undefined;
  private readonly memory = new MemoryWatch();

  constructor(private readonly options: LocalExecutorOptions) {
    this.sandboxed = options.bubblewrap !== undefined;
    this.sessionUid = this.sandboxed ? options.sessionUid : undefined;
  }

  start(spec: ExecSpec, onLines: LineSink): Execution {
    const limits = spec.limits ?? {};
    this.grantWritable(spec);
    const { command, args, env, cwd } = this.command(spec);
    const startedAt = Date.now();
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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
    const killGroup = () => signalGroup(child.pid, 'SIGKILL');
    const terminate = () => {
      if (this.sandboxed && child.pid) terminateInside(child.pid);
      else signalGroup(child.pid, 'SIGTERM');
    };
    /** SIGTERM, then SIGKILL after the grace period; false when it was already ending. */
    const stop = (limit?: string): boolean => {
      if (stopped || limitHit) return false;
      if (limit) limitHit = limit;
      else stopped = true;
      terminate();
      killTimer = setTimeout(killGroup, this.options.stopGraceMs ?? STOP_GRACE_MS);
      killTimer.unref();
      return true;
    };
    const { memoryBytes, wallMs } = limits;
    // Out of memory is not waited for: SIGKILL at once.
    const unwatchMemory =
      memoryBytes && child.pid
        ? this.memory.watch(child.pid, memoryBytes, () => {
            if (stopped || limitHit) return;
            limitHit = memoryReason(memoryBytes);
            killGroup();
          })
        : () => {};
    const wallTimer = wallMs
      ? setTimeout(() => (timedOut = stop(`time limit ${Math.round(wallMs / 1000)} s reached`)), wallMs).unref()
      : undefined;
    const unwatch = () => {
      unwatchMemory();
      clearTimeout(wallTimer);
    };
    const result = new Promise<ExecResult>((resolve) => {
      const outputs = [pipeLines(child.stdout, 'stdout', sink), pipeLines(child.stderr, 'stderr', sink)];
      child.on('error', (err) => {
        unwatch();
        resolve({ exitCode: null, signal: null, timedOut: false, stopped, startedAt, endedAt: Date.now(), error: err.message });
      });
      child.on('exit', () => {
        clearTimeout(killTimer);
        unwatch();
        // Orphans the code left behind in its group go with it (and with them, the pipes they hold).
        killGroup();
      });
      child.on('close', (code, signal) => {
        // RLIMIT_DATA makes an allocation past the limit fail inside Python: a MemoryError.
        if (!limitHit && code !== 0 && memoryBytes && lastErrors.some((l) => /^MemoryError\b/.test(l))) {
          limitHit = memoryReason(memoryBytes);
        }
        void Promise.all(outputs).then(() =>
          resolve({ exitCode: code, signal, timedOut, stopped, startedAt, endedAt: Date.now(), ...(limitHit ? { limit: limitHit } : {}) }),
        );
      });
    });
    return { result, stop: (limit) => void stop(limit) };
  }

  /** The work folder's top and the writable mounts belong to the session uid. */
  private grantWritable(spec: ExecSpec): void {
    const uid = this.sessionUid;
    if (uid === undefined) return;
    chownSync(spec.workDir, uid, uid);
    // bwrap enters it before dropping to the session uid, as root without DAC override.
    chmodSync(spec.workDir, 0o755);
    for (const m of spec.mounts) if (m.writable) chownSync(m.host, uid, uid);
  }

  /** prlimit, taskset and setpriv, each exec'ing the next, then Python: one process in the end. */
  private launchChain(limits: ExecLimits): string[] {
    const chain = [PRLIMIT, '--core=0'];
    if (limits.memoryBytes) chain.push(`--data=${limits.memoryBytes}`);
    // RLIMIT_NPROC counts the processes of a uid: only meaningful for the session uid.
    if (this.sessionUid !== undefined) chain.push(`--nproc=${this.options.maxProcesses ?? DEFAULT_MAX_PROCESSES}`);
    chain.push('--');
    const cores = availableParallelism();
    if (limits.cpus && limits.cpus < cores) chain.push(TASKSET, '-c', limits.cpus === 1 ? '0' : `0-${limits.cpus - 1}`);
    if (this.sessionUid !== undefined) {
      chain.push(SETPRIV, `--reuid=${this.sessionUid}`, `--regid=${this.sessionUid}`, '--clear-groups', '--no-new-privs', '--');
    }
    return chain;
  }

  private command(spec: ExecSpec) {
    const sandboxed = this.sandboxed;
    const datasetPath = spec.datasetName
      ? sandboxed
        ? `${SANDBOX_DATA_ROOT}/${spec.datasetName}`
        : datasetView(spec)
      : '';
    const mountEnv = Object.fromEntries(
      spec.mounts.map((m) => {
        const base = sandboxed ? m.inside : m.host;
        return [m.env, m.file ? `${base}/${m.file}` : base];
      }),
    );
    const env: NodeJS.ProcessEnv = {
      ...spec.env,
      ...mountEnv,
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: sandboxed ? '/tmp' : spec.workDir,
      LANG: 'C.UTF-8',
      PYTHONUNBUFFERED: '1',
      PYTHONPATH: sandboxed ? SANDBOX_RUNTIME_DIR : this.options.runtimeDir,
      KHD_SESSION: '1',
      KHD_SESSION_NAME: spec.sessionName,
      KHD_DATASET_NAME: spec.datasetName ?? '',
      KHD_DATASET_PATH: datasetPath,
      KHD_GPU_NUM: String(spec.gpuIds.length),
      CUDA_VISIBLE_DEVICES: spec.gpuIds.join(','),
    };
    const python = [...this.launchChain(spec.limits ?? {}), this.options.python.executable, '-u', spec.entry, ...spec.args];
    if (!sandboxed) return { command: python[0]!, args: python.slice(1), env, cwd: spec.workDir };
    const wrap = bubblewrapArgs(spec, {
      pythonPrefixes: this.options.python.prefixes,
      runtimeDir: this.options.runtimeDir,
      tmpBytes: this.options.tmpBytes ?? DEFAULT_TMP_BYTES,
      keepSetuid: this.sessionUid !== undefined,
    });
    return { command: this.options.bubblewrap!, args: [...wrap, '--', ...python], env, cwd: '/' };
  }
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
