// What Slurm says of a job, read as the session's state and end: no I/O here (slurm-executor.ts asks).
import type { ExecResult, LineSink } from './executor.js';

/** Slurm's end states, and what each means for the session. */
export const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']);
/** A job Slurm no longer knows, that left no exit status. */
export const FORGOTTEN = 'FORGOTTEN';

/** What Slurm says of a job, or what its exit file says once Slurm has forgotten it. */
export interface JobState {
  state: string;
  exit: number;
  signal: number;
  reason: string;
  /** Whether it was placed on a node (a job withdrawn while pending never was). */
  ran: boolean;
  /** How long it has run, by Slurm's clock (which a restart of the server does not reset). */
  runMs: number;
}

/** Slurm's `RunTime=[days-]hh:mm:ss`, in milliseconds. */
export function runTimeMs(text: string): number {
  const m = /^(?:(\d+)-)?(\d+):(\d+):(\d+)$/.exec(text);
  if (!m) return 0;
  const [, days = '0', h, min, sec] = m;
  return (((Number(days) * 24 + Number(h)) * 60 + Number(min)) * 60 + Number(sec)) * 1000;
}


/** The state `scontrol show job -o` prints. */
export function parseJobState(text: string): JobState {
  const field = (name: string) => new RegExp(`\\b${name}=(\\S+)`).exec(text)?.[1] ?? '';
  const [exit, signal] = field('ExitCode').split(':').map(Number);
  const nodes = field('NodeList');
  return { state: field('JobState'), exit: exit ?? 0, signal: signal ?? 0, reason: field('Reason'), ran: nodes !== '' && nodes !== '(null)', runMs: runTimeMs(field('RunTime')) };
}

/** A job's end from the exit status its script wrote (a shell's: 128 + N for signal N). */
export function exitedState(status: number): JobState {
  const signal = status > 128 ? status - 128 : 0;
  return { state: status === 0 ? 'COMPLETED' : 'FAILED', exit: signal ? 0 : status, signal, reason: '', ran: true, runMs: 0 };
}

/** Slurm's pending reasons (squeue(1)), in a participant's words; the code is shown beside. */
const PENDING: Record<string, string> = {
  None: 'submitted to the cluster',
  Resources: "the cluster's GPUs or nodes are in use",
  Priority: 'jobs of higher priority come first',
  ReqNodeNotAvail: 'the nodes it needs are down or drained',
  PartitionDown: 'the partition is down',
  PartitionInactive: 'the partition is down',
  JobHeldAdmin: 'held by an administrator',
  JobHeldUser: 'held',
  BeginTime: 'not yet at its start time',
  QOSMaxGRESPerUser: "the cluster's GPU quota for khd is in use",
  AssocGrpGRES: "the cluster's GPU quota for khd's account is in use",
};

/** Why Slurm holds a job, in words (`squeue`'s REASON). */
export function pendingReason(reason: string): string {
  const code = reason.replace(/[,(].*$/, '');
  const words = PENDING[code] ?? (code.startsWith('QOS') || code.startsWith('Assoc') ? 'a cluster quota is in use' : 'held by Slurm');
  return `${words} (Slurm: ${reason})`;
}

/** What slurmstepd writes into a job's stderr when it is signalled or ends at a limit: the session's reason says it. */
const SLURM_NOTICE = /^slurmstepd(?:-\S+)?: error: \*\*\* (?:JOB|STEP) \S+ ON \S+ .*\*\*\*$/;

export function withoutSlurmNotices(onLines: LineSink): LineSink {
  return (stream, lines, marks) => {
    if (stream !== 'stderr' || !lines.some((l) => SLURM_NOTICE.test(l))) return onLines(stream, lines, marks);
    const keep = lines.map((l) => !SLURM_NOTICE.test(l));
    const kept = lines.filter((_, i) => keep[i]);
    if (kept.length > 0) onLines(stream, kept, marks?.filter((_, i) => keep[i]));
  };
}


/** How a job's end reads as the run's result, with its reason. */
export function jobResult(jobId: string, s: JobState, startedAt: number, stopping: { limit?: string; timedOut?: boolean } | undefined): ExecResult {
  const base = { startedAt, endedAt: Date.now(), timedOut: s.state === 'TIMEOUT' || stopping?.timedOut === true, stopped: stopping !== undefined && !stopping.limit };
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
    case FORGOTTEN:
      return { ...base, exitCode: null, signal: null, limit: `its Slurm job ${jobId} ended while the server was away, and Slurm no longer says how` };
    default:
      return { ...base, exitCode: null, signal: null, limit: `ended by Slurm: ${s.state}` };
  }
}
