import { spawn } from 'node:child_process';
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
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // The group is already gone.
      }
    };
    const result = new Promise<ExecResult>((resolve) => {
      const outputs = [pipeLines(child.stdout, 'stdout', onLines), pipeLines(child.stderr, 'stderr', onLines)];
      child.on('error', (err) => {
        resolve({ exitCode: null, signal: null, timedOut: false, stopped, startedAt, endedAt: Date.now(), error: err.message });
      });
      child.on('close', (code, signal) => {
        clearTimeout(killTimer);
        // Orphans the code left behind in its group go with it.
        signalGroup('SIGKILL');
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
        signalGroup('SIGTERM');
        killTimer = setTimeout(() => signalGroup('SIGKILL'), this.options.stopGraceMs ?? STOP_GRACE_MS);
        killTimer.unref();
      },
    };
  }

  private command(spec: ExecSpec) {
    const sandboxed = this.options.bubblewrap !== undefined;
    const datasetPath = spec.datasetName
      ? sandboxed
        ? `${SANDBOX_DATA_ROOT}/${spec.datasetName}`
        : spec.datasetDir!
      : '';
    const env: NodeJS.ProcessEnv = {
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
