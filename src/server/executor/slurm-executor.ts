import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LimitEnforcement } from '../../protocol/types.js';
import type { Admission, ExecResult, ExecSpec, Execution, Executor, LineSink, RunHooks } from './executor.js';
import { JobOutput } from './job-output.js';
import { exitedState, FINAL, FORGOTTEN, jobResult, parseJobState, pendingReason, withoutSlurmNotices, type JobState } from './slurm-state.js';
import { SETPRIV } from './launch.js';
import type { Launch, LocalExecutor } from './local-executor.js';

export interface SlurmOptions {
  /** The launch each job runs on its node: the local executor's sandbox, uid and limits. */
  local: LocalExecutor;
  /** Where jobs' output goes: a folder the nodes share at the same path (the data dir's). */
  jobsDir: string;
  /** The most GPUs a node of the partition has (`sinfo`'s GRES): what one session may ask for. */
  nodeGpus: number;
  partition?: string;
  account?: string;
  qos?: string;
  /** Further sbatch options for every job (`--constraint=v100`): `khd server --config`'s "slurm-sbatch-args". */
  sbatchArgs?: string[];
  /** How often job states and output are read. */
  pollMs?: number;
  stopGraceMs?: number;
  /** SLURM_CONF and the like, for the Slurm commands. */
  env?: NodeJS.ProcessEnv;
}

/** What re-attaches to a job after a restart: its id, and the session uid it runs as. */
interface JobRef {
  id: string;
  uid?: number;
  /** The session's time limit, kept by khd to the second (Slurm's --time is in minutes, and a backstop). */
  wallMs?: number;
}

/** How long Slurm may fail to answer (slurmctld restarting) before a followed job is given up. */
const SLURM_AWAY_MS = 10 * 60_000;

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
  readonly queues = true;
  /** Slurm places each job: khd keeps no GPU pool. The indices are the job's own 0..n-1 (CUDA_VISIBLE_DEVICES is Slurm's). */
  readonly admission: Admission;

  constructor(private readonly o: SlurmOptions) {
    this.sandboxed = o.local.sandboxed;
    this.ownUids = o.local.ownUids;
    this.enforcement = { ...o.local.enforcement, memory: 'Slurm (--mem)', fallbackReason: undefined };
    this.admission = { gpus: o.nodeGpus, take: (count) => [...Array(count).keys()], release: () => {} };
  }

  /** A Slurm command's output; a failure says what Slurm said (`sbatch: error: …`). */
  private slurm(command: string, args: string[], input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { env: { ...process.env, ...this.o.env }, timeout: 30_000, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.stdin.on('error', () => {}).end(input ?? '');
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) return resolve(Buffer.concat(out).toString());
        const said = Buffer.concat(err).toString().trim().split('\n').at(-1);
        reject(new Error(said || `${command} exited with ${code}`));
      });
    });
  }

  start(spec: ExecSpec, onLines: LineSink, hooks: RunHooks = {}): Execution {
    let launch: Launch;
    try {
      // Slurm chooses the GPUs on the node: every device may be bound, its cgroup (ConstrainDevices) keeps the others out.
      launch = this.o.local.launchFor(spec.gpuIds.length > 0 ? { ...spec, gpuDevices: [...Array(MAX_NODE_GPUS).keys()] } : spec);
    } catch (err) {
      const now = Date.now();
      return { result: Promise.resolve({ exitCode: null, signal: null, timedOut: false, stopped: false, startedAt: now, endedAt: now, error: (err as Error).message }), stop: () => {} };
    }
    const job = this.slurm('sbatch', this.sbatchArgs(spec), this.script(launch)).then((out) => {
      const ref: JobRef = { id: out.trim().split(';')[0]!, uid: launch.uid, wallMs: spec.limits?.wallMs };
      hooks.submitted?.(JSON.stringify(ref));
      return ref;
    });
    return this.follow(job, undefined, onLines, hooks, () => launch.release());
  }

  attach(job: string, mark: unknown, onLines: LineSink, hooks: RunHooks = {}): Execution {
    const ref = JSON.parse(job) as JobRef;
    return this.follow(Promise.resolve(ref), mark, onLines, hooks, this.o.local.reclaim(ref.uid));
  }

  /**
   * Follows a submitted job until it ends: its state polled (pending reason, start, end), its
   * output read as it grows. A stop is scancel; a detach lets go of it and leaves it running.
   */
  private follow(job: Promise<JobRef>, mark: unknown, onLines: LineSink, hooks: RunHooks, release: () => Promise<void>): Execution {
    const startedAt = Date.now();
    let stopping: { limit?: string; timedOut?: boolean } | undefined;
    let detached = false;
    let jobId: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let waiting: string | null = 'submitting to the cluster';
    let wake: (() => void) | undefined;
    /** TERM to every process of the job, KILL after the grace period. */
    /** A job Slurm still holds is withdrawn; a running one gets TERM, then KILL after the grace period. */
    const cancel = () => {
      if (waiting !== null) void this.slurm('scancel', [jobId!]).catch(() => {});
      else void this.cancel(jobId!, 'TERM');
      // Also for a withdrawn job that started meanwhile.
      killTimer = setTimeout(() => void this.cancel(jobId!, 'KILL'), this.o.stopGraceMs ?? 10_000);
    };
    const failed = (error: string): ExecResult => ({ exitCode: null, signal: null, timedOut: false, stopped: false, startedAt, endedAt: Date.now(), error });
    const result = (async (): Promise<ExecResult> => {
      let output: JobOutput | undefined;
      try {
        const { id, wallMs } = await job;
        jobId = id;
        if (stopping) cancel();
        output = new JobOutput({ stdout: this.outFile(jobId, 'out'), stderr: this.outFile(jobId, 'err') }, withoutSlurmNotices(onLines), mark);
        let answered = Date.now();
        for (;;) {
          // The job goes on; the log keeps where its output was read up to.
          if (detached) return { exitCode: null, signal: null, timedOut: false, stopped: false, startedAt, endedAt: Date.now(), detached: true };
          const state = await this.state(jobId).catch((err: Error) => {
            // slurmctld restarting: the job goes on; only a long silence gives it up.
            if (Date.now() - answered > SLURM_AWAY_MS) throw err;
            return undefined;
          });
          output.read();
          if (!state) {
            await this.pause((w) => (wake = w));
            continue;
          }
          answered = Date.now();
          if (state.state === 'PENDING') waiting = pendingReason(state.reason);
          else if (waiting !== null && state.ran) {
            waiting = null;
            hooks.running?.();
          }
          if (wallMs && state.state === 'RUNNING' && state.runMs >= wallMs && !stopping) {
            // The session's time limit, to the second, also across a restart of the server.
            stopping = { limit: `time limit ${Math.round(wallMs / 1000)} s reached`, timedOut: true };
            cancel();
          }
          if (FINAL.has(state.state) || state.state === FORGOTTEN) {
            output.end();
            return jobResult(jobId, state, startedAt, stopping);
          }
          await this.pause((w) => (wake = w));
        }
      } catch (err) {
        output?.end();
        return failed(`Slurm: ${(err as Error).message}`);
      } finally {
        clearTimeout(killTimer);
        if (!detached) {
          await release();
          if (jobId) for (const kind of ['out', 'err', 'exit'] as const) rmSync(this.outFile(jobId, kind), { force: true });
        }
      }
    })();
    return {
      result,
      waiting: () => waiting,
      detach: () => {
        if (!jobId) return false;
        detached = true;
        wake?.();
        return true;
      },
      stop: (limit) => {
        if (stopping) return;
        stopping = { limit };
        if (jobId) cancel();
      },
    };
  }

  /** Until the next poll, or until `wake` is called (a detach). */
  private pause(onWake: (wake: () => void) => void): Promise<void> {
    return new Promise((resolve) => {
      onWake(resolve);
      setTimeout(resolve, this.o.pollMs ?? 250);
    });
  }

  private outFile(jobId: string, kind: 'out' | 'err' | 'exit'): string {
    return join(this.o.jobsDir, `${jobId}.${kind}`);
  }

  private script(launch: Launch): string {
    return jobScript(launch, this.o.jobsDir);
  }

  private sbatchArgs(spec: ExecSpec): string[] {
    const l = spec.limits ?? {};
    const out = (kind: string) => join(this.o.jobsDir, `%j.${kind}`);
    // --no-requeue: a job Slurm takes back (node failure, preemption) ends its session with the reason;
    // run again, it would start from scratch over a truncated output.
    const args = ['--parsable', '--job-name', `khd:${spec.sessionName}`, '--output', out('out'), '--error', out('err'), '--chdir', '/', '--export', 'NONE', '--no-requeue'];
    if (spec.gpuIds.length > 0) args.push(`--gres=gpu:${spec.gpuIds.length}`);
    if (l.cpus) args.push('--cpus-per-task', String(l.cpus));
    if (l.memoryBytes) args.push(`--mem=${Math.max(1, Math.ceil(l.memoryBytes / 1024 ** 2))}M`);
    // khd stops the session at its limit to the second; Slurm's limit, a minute later, is the backstop.
    if (l.wallMs) args.push('--time', String(Math.ceil(l.wallMs / 60_000) + 1));
    if (this.o.partition) args.push('--partition', this.o.partition);
    if (this.o.account) args.push('--account', this.o.account);
    if (this.o.qos) args.push('--qos', this.o.qos);
    return [...args, ...(this.o.sbatchArgs ?? [])];
  }

  /**
   * The job's state. Slurm forgets an ended job after MinJobAge (300 s by default): a server that
   * was away longer reads how it ended from the exit status the script wrote.
   */
  private async state(jobId: string): Promise<JobState> {
    let text: string;
    try {
      text = await this.slurm('scontrol', ['show', 'job', jobId, '-o']);
    } catch (err) {
      if (!/invalid job id/i.test((err as Error).message)) throw err;
      let status: number;
      try {
        status = Number(readFileSync(this.outFile(jobId, 'exit'), 'utf8').trim());
      } catch {
        return { state: FORGOTTEN, exit: 0, signal: 0, reason: '', ran: true, runMs: 0 };
      }
      return exitedState(status);
    }
    return parseJobState(text);
  }

  /** TERM to the job's shell, which passes it on to the code; KILL to every process of the job. */
  private async cancel(jobId: string, signal: 'TERM' | 'KILL'): Promise<void> {
    await this.slurm('scancel', ['--signal', signal, signal === 'TERM' ? '--batch' : '--full', jobId]).catch(() => {});
  }
}

/**
 * The job script, given to sbatch on stdin (slurmctld keeps it): the identity files as
 * here-documents on fds 3 and 4, the launch in a cleared environment, and its exit status
 * written beside the output, for a server that comes back after Slurm has forgotten the job.
 * A stop (scancel --batch: TERM to this shell alone) is passed on as the local executor passes
 * it: TERM to the session's own processes (its uid's), never to bubblewrap, whose death would
 * SIGKILL the code (--die-with-parent) before it could save anything. A stop that comes while
 * the launch is still setting the sandbox up, before any process of the session's uid exists,
 * is sent again every 0.1 s until one gets it (it was lost before: the code ran on until the
 * KILL at the end of the grace period).
 */
export function jobScript(launch: Launch, jobsDir: string): string {
  const lines = ['#!/bin/sh'];
  const uid = launch.uid;
  // Without a uid of the session's own, its processes cannot be told from bubblewrap: a stop ends the job.
  // (kill(-1) succeeds here even when nothing of the uid runs: pgrep says whether something does.)
  const term = uid === undefined ? 'kill -TERM "$child"' : `{ pgrep -U ${uid} >/dev/null && ${SETPRIV} --reuid=${uid} --regid=${uid} --clear-groups /bin/sh -c "kill -TERM -1"; }`;
  lines.push('stop=', "trap 'stop=1' TERM");
  if (launch.identity) {
    const end = `KHD_${randomBytes(8).toString('hex')}`;
    lines.push(`exec 3<<'${end}' 4<<'${end}'`, launch.identity.passwd.replace(/\n$/, ''), end, launch.identity.group.replace(/\n$/, ''), end);
  }
  // The GPUs are the ones Slurm gave the job, in its own CUDA_VISIBLE_DEVICES.
  const env = Object.entries(launch.env)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (k === 'CUDA_VISIBLE_DEVICES' && v ? `${k}="$CUDA_VISIBLE_DEVICES"` : `${k}=${quote(v!)}`));
  lines.push(`env -i ${env.join(' ')} ${[launch.command, ...launch.args].map(quote).join(' ')} < /dev/null &`);
  // A trapped TERM interrupts `wait`: the stop is passed on (again, until something of the
  // session's got it), then wait again until the launch has ended.
  lines.push(
    'child=$!',
    'while :; do',
    `  if [ -n "$stop" ]; then stop=; until ${term} || ! kill -0 "$child" 2>/dev/null; do sleep 0.1; done; fi`,
    '  wait "$child"; code=$?',
    '  kill -0 "$child" 2>/dev/null || break',
    'done',
  );
  lines.push(`echo "$code" > ${quote(jobsDir)}/"$SLURM_JOB_ID.exit"`, 'exit "$code"');
  return `${lines.join('\n')}\n`;
}
