import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { LogStream } from '../../protocol/types.js';
import type { ExecResult, ExecSpec, Execution, Executor, LineSink } from './executor.js';
import { LineSplitter } from './line-splitter.js';
import { bubblewrapArgs, SANDBOX_DATA_ROOT, SANDBOX_RUNTIME_DIR } from './sandbox.js';

export const STOP_GRACE_MS = 10_000;

export interface LocalExecutorOptions {
  python: { executable: string; prefixes: string[] };
  runtimeDir: string;
  /** Path of `bwrap`, or undefined to run sessions as plain processes (`--no-sandbox`). */
  bubblewrap: string | undefined;
  stopGraceMs?: number;
}

/** Runs each session as a local process group, inside bubblewrap when it is available. */
export class LocalExecutor implements Executor {
  readonly sandboxed: boolean;

  constructor(private readonly options: LocalExecutorOptions) {
    this.sandboxed = options.bubblewrap !== undefined;
  }

  start(spec: ExecSpec, onLines: LineSink): Execution {
    const { command, args, env, cwd } = this.command(spec);
    const startedAt = Date.now();
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stopped = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is already gone.
      }
    };
    const terminate = () => {
      if (!child.pid) return;
      if (this.sandboxed) terminateInside(child.pid);
      else {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          // Already gone.
        }
      }
    };
    const result = new Promise<ExecResult>((resolve) => {
      const outputs = [pipeLines(child.stdout, 'stdout', onLines), pipeLines(child.stderr, 'stderr', onLines)];
      child.on('error', (err) => {
        resolve({ exitCode: null, signal: null, timedOut: false, stopped, startedAt, endedAt: Date.now(), error: err.message });
      });
      child.on('exit', () => {
        clearTimeout(killTimer);
        // Orphans the code left behind in its group go with it (and with them, the pipes they hold).
        killGroup();
      });
      child.on('close', (code, signal) => {
        void Promise.all(outputs).then(() =>
          resolve({ exitCode: code, signal, timedOut: false, stopped, startedAt, endedAt: Date.now() }),
        );
      });
    });
    return {
      result,
      stop: () => {
        if (stopped) return;
        stopped = true;
        terminate();
        killTimer = setTimeout(killGroup, this.options.stopGraceMs ?? STOP_GRACE_MS);
        killTimer.unref();
      },
    };
  }

  private command(spec: ExecSpec) {
    const sandboxed = this.options.bubblewrap !== undefined;
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
    const python = [this.options.python.executable, '-u', spec.entry, ...spec.args];
    if (!sandboxed) return { command: python[0]!, args: python.slice(1), env, cwd: spec.workDir };
    const wrap = bubblewrapArgs(spec, { pythonPrefixes: this.options.python.prefixes, runtimeDir: this.options.runtimeDir });
    return { command: this.options.bubblewrap!, args: [...wrap, '--', ...python], env, cwd: '/' };
  }
}

/**
 * SIGTERM to the session's own processes but not to bubblewrap: bwrap dies of SIGTERM and its
 * --die-with-parent would turn that into SIGKILL, leaving the code no chance to save its work.
 * The processes are the group's members other than the two bwrap processes (outer and init).
 */
function terminateInside(pgid: number): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so split after the last ')'.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    if (pgrp !== pgid || comm === 'bwrap') continue;
    try {
      process.kill(Number(entry), 'SIGTERM');
    } catch {
      // Gone in the meantime.
    }
  }
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
