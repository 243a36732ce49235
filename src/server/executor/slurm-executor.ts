import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LimitEnforcement } from '../../protocol/types.js';
import type { ExecResult, ExecSpec, Execution, Executor, LineSink } from './executor.js';
import { LineSplitter } from './line-splitter.js';
import type { LocalExecutor } from './local-executor.js';

const run = promisify(execFile);

export interface SlurmOptions {
  /** The launch each job runs on its node: the local executor's sandbox, uid and limits. */
  local: LocalExecutor;
  /** Where jobs' scripts and output go: a folder the nodes share at the same path (the data dir's). */
  jobsDir: string;
  partition?: string;
  account?: string;
  qos?: string;
  /** How often job states and output are read. */
  pollMs?: number;
  stopGraceMs?: number;
  /** SLURM_CONF and the like, for the Slurm commands. */
  env?: NodeJS.ProcessEnv;
}

/** Slurm's end states, and what each means for the session. */
const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']);

/** GPU device nodes a job may find on its node (/dev/nvidia0…). */
const MAX_NODE_GPUS = 16;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Sessions as Slurm batch jobs: each is one `sbatch` with its GPUs as GRES, its CPUs, memory and
 * time; the job script runs the same sandboxed launch the local executor runs, on the node. The
 * job's output is written to the shared folder and read from there line by line, as it grows;
 * a stop is `scancel` (TERM, then KILL after the grace period); Slurm's end state becomes the
 * session's end, with its reason.
 */
export class SlurmExecutor implements Executor {
  readonly sandboxed: boolean;
  readonly ownUids: boolean;
  readonly enforcement: LimitEnforcement;

  constructor(private readonly o: SlurmOptions) {
    this.sandboxed = o.local.sandboxed;
    this.ownUids = o.local.ownUids;
    this.enforcement = { ...o.local.enforcement, memory: 'Slurm (--mem)', fallbackReason: undefined };
  }

  /** A Slurm command's output; a failure says what Slurm said (`sbatch: error: …`). */
  private slurm(command: string, args: string[]): Promise<string> {
    return run(command, args, { env: { ...process.env, ...this.o.env }, timeout: 30_000 }).then(
      (r) => r.stdout,
      (err: Error & { stderr?: string }) => {
        throw new Error(err.stderr?.trim().split('\n').at(-1) || err.message.split('\n')[0]);
      },
    );
  }

  start(spec: ExecSpec, onLines: LineSink): Execution {
    const startedAt = Date.now();
    const dir = join(this.o.jobsDir, `job-${randomBytes(6).toString('hex')}`);
    let stopping: { limit?: string } | undefined;
    let jobId: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const result = (async (): Promise<ExecResult> => {
      let launch: ReturnType<LocalExecutor['launchFor']>;
      try {
        // Slurm chooses the GPUs on the node: every device may be bound, its cgroup (ConstrainDevices) keeps the others out.
        launch = this.o.local.launchFor(spec.gpuIds.length > 0 ? { ...spec, gpuDevices: [...Array(MAX_NODE_GPUS).keys()] } : spec);
      } catch (err) {
        return { exitCode: null, signal: null, timedOut: false, stopped: false, startedAt, endedAt: Date.now(), error: (err as Error).message };
      }
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const script = this.script(dir, launch);
        jobId = (await this.slurm('sbatch', this.sbatchArgs(spec, dir, script))).trim().split(';')[0]!;
        if (stopping) await this.cancel(jobId, 'TERM');
        const out = new Tail(join(dir, 'out'), 'stdout', onLines);
        const err = new Tail(join(dir, 'err'), 'stderr', onLines);
        let state = await this.state(jobId);
        while (!FINAL.has(state.state)) {
          await new Promise((r) => setTimeout(r, this.o.pollMs ?? 250));
          out.read();
          err.read();
          state = await this.state(jobId);
        }
        out.end();
        err.end();
        return this.toResult(state, startedAt, stopping);
      } catch (err) {
        return { exitCode: null, signal: null, timedOut: false, stopped: false, startedAt, endedAt: Date.now(), error: `Slurm: ${(err as Error).message}` };
      } finally {
        clearTimeout(killTimer);
        await launch.release();
        rmSync(dir, { recursive: true, force: true });
      }
    })();
    return {
      result,
      stop: (limit) => {
        if (stopping) return;
        stopping = { limit };
        if (!jobId) return;
        void this.cancel(jobId, 'TERM');
        killTimer = setTimeout(() => void this.cancel(jobId!, 'KILL'), this.o.stopGraceMs ?? 10_000);
      },
    };
  }

  /** The job script: the launch's environment, its identity files on fds 3 and 4, then the launch itself. */
  private script(dir: string, launch: ReturnType<LocalExecutor['launchFor']>): string {
    const lines = ['#!/bin/sh'];
    if (launch.identity) {
      writeFileSync(join(dir, 'passwd'), launch.identity.passwd);
      writeFileSync(join(dir, 'group'), launch.identity.group);
      lines.push(`exec 3< ${quote(join(dir, 'passwd'))} 4< ${quote(join(dir, 'group'))}`);
    }
    // The GPUs are the ones Slurm gave the job, in its own CUDA_VISIBLE_DEVICES.
    const env = Object.entries(launch.env)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => (k === 'CUDA_VISIBLE_DEVICES' && v ? `${k}="$CUDA_VISIBLE_DEVICES"` : `${k}=${quote(v!)}`));
    lines.push(`exec env -i ${env.join(' ')} ${[launch.command, ...launch.args].map(quote).join(' ')} < /dev/null`);
    const path = join(dir, 'job.sh');
    writeFileSync(path, `${lines.join('\n')}\n`);
    chmodSync(path, 0o700);
    return path;
  }

  private sbatchArgs(spec: ExecSpec, dir: string, script: string): string[] {
    const l = spec.limits ?? {};
    const args = ['--parsable', '--job-name', `khd:${spec.sessionName}`, '--output', join(dir, 'out'), '--error', join(dir, 'err'), '--chdir', '/', '--export', 'NONE'];
    if (spec.gpuIds.length > 0) args.push(`--gres=gpu:${spec.gpuIds.length}`);
    if (l.cpus) args.push('--cpus-per-task', String(l.cpus));
    if (l.memoryBytes) args.push(`--mem=${Math.max(1, Math.ceil(l.memoryBytes / 1024 ** 2))}M`);
    if (l.wallMs) args.push('--time', String(Math.max(1, Math.ceil(l.wallMs / 60_000))));
    if (this.o.partition) args.push('--partition', this.o.partition);
    if (this.o.account) args.push('--account', this.o.account);
    if (this.o.qos) args.push('--qos', this.o.qos);
    return [...args, script];
  }

  private async state(jobId: string): Promise<{ state: string; exit: number; signal: number; reason: string }> {
    const text = await this.slurm('scontrol', ['show', 'job', jobId, '-o']);
    const field = (name: string) => new RegExp(`\\b${name}=(\\S+)`).exec(text)?.[1] ?? '';
    const [exit, signal] = field('ExitCode').split(':').map(Number);
    return { state: field('JobState'), exit: exit ?? 0, signal: signal ?? 0, reason: field('Reason') };
  }

  private async cancel(jobId: string, signal: 'TERM' | 'KILL'): Promise<void> {
    await this.slurm('scancel', ['--signal', signal, '--full', jobId]).catch(() => {});
  }

  private toResult(s: { state: string; exit: number; signal: number }, startedAt: number, stopping: { limit?: string } | undefined): ExecResult {
    const base = { startedAt, endedAt: Date.now(), timedOut: s.state === 'TIMEOUT', stopped: stopping !== undefined && !stopping.limit };
    if (stopping?.limit) return { ...base, exitCode: null, signal: 'SIGTERM', limit: stopping.limit };
    switch (s.state) {
      case 'COMPLETED':
      case 'FAILED':
        return { ...base, exitCode: s.signal ? null : s.exit, signal: s.signal ? `signal ${s.signal}` : null };
      case 'TIMEOUT':
        return { ...base, exitCode: null, signal: 'SIGKILL', limit: 'time limit reached (Slurm: TIMEOUT)' };
      case 'OUT_OF_MEMORY':
        return { ...base, exitCode: null, signal: 'SIGKILL', limit: 'out of memory (Slurm: OUT_OF_MEMORY)' };
      case 'CANCELLED':
        return base.stopped ? { ...base, exitCode: null, signal: 'SIGTERM' } : { ...base, exitCode: null, signal: 'SIGTERM', limit: 'cancelled in Slurm (scancel, by an administrator)' };
      default:
        return { ...base, exitCode: null, signal: null, limit: `ended by Slurm: ${s.state}` };
    }
  }
}

/** Reads a job's output file as it grows, line by line. */
class Tail {
  private offset = 0;
  private readonly splitter = new LineSplitter();

  constructor(
    private readonly path: string,
    private readonly stream: 'stdout' | 'stderr',
    private readonly onLines: LineSink,
  ) {}

  read(): void {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return;
    }
    try {
      const buffer = Buffer.alloc(1024 * 1024);
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, this.offset);
        if (n === 0) break;
        this.offset += n;
        const lines = this.splitter.push(buffer.subarray(0, n));
        if (lines.length > 0) this.onLines(this.stream, lines);
      }
    } finally {
      closeSync(fd);
    }
  }

  end(): void {
    this.read();
    const rest = this.splitter.end();
    if (rest.length > 0) this.onLines(this.stream, rest);
  }
}
