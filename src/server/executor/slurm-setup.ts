import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LocalExecutor } from './local-executor.js';
import { SlurmExecutor, type SlurmOptions } from './slurm-executor.js';

const run = promisify(execFile);

/** What `khd server` says about Slurm; the rest (the jobs' folder, the nodes' sizes) is found at start. */
export type SlurmSettings = Omit<SlurmOptions, 'local' | 'jobsDir' | 'nodeGpus'>;

/** The largest node of a partition: what one session can be given. */
export interface SlurmNodes {
  gpus: number;
  memoryBytes: number;
  cpus: number;
}

/** How long the start waits for the shared-folder check's job to run, and how long a file a node wrote may take to show here (NFS caches). */
const CHECK_WAIT_MS = 60_000;
const CHECK_POLL_MS = 100;
const ENDED = /^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)/;

/** From `sinfo -h -o '%G|%m|%c'` (`gpu:2|8000|2`, `gpu:v100:4(S:0-1)|192000|40`, `(null)|4000|8`). */
export function slurmNodes(sinfo: string): SlurmNodes {
  const nodes = { gpus: 0, memoryBytes: 0, cpus: 0 };
  for (const line of sinfo.split('\n').filter((l) => l.includes('|'))) {
    const [gres = '', memory = '', cpus = ''] = line.split('|');
    const gpus = [...gres.matchAll(/gpu(?::[^:,()\s]+)?:(\d+)/g)].map((m) => Number(m[1]));
    nodes.gpus = Math.max(nodes.gpus, ...gpus);
    nodes.memoryBytes = Math.max(nodes.memoryBytes, (Number.parseInt(memory, 10) || 0) * 1024 ** 2);
    nodes.cpus = Math.max(nodes.cpus, Number.parseInt(cpus, 10) || 0);
  }
  return nodes;
}

/**
 * Sessions as Slurm jobs, for `khd server --executor slurm`: the partition's nodes (what one
 * session may ask for) from sinfo, and a check that the nodes see the data dir at the same path
 * (NFS in production): a job writes a file into it. The start waits for that job while it runs;
 * on a cluster too busy to run it now, the server starts and the check finishes later, warning
 * if the file never shows.
 */
export async function slurmExecutor(local: LocalExecutor, dataDir: string, o: SlurmSettings, warn: (message: string) => void): Promise<{ executor: SlurmExecutor; nodes: SlurmNodes }> {
  const jobsDir = join(dataDir, 'slurm-jobs');
  mkdirSync(jobsDir, { recursive: true, mode: 0o700 });
  const env = { ...process.env, ...o.env };
  const partition = o.partition ? ['--partition', o.partition] : [];
  const charged = [...(o.account ? ['--account', o.account] : []), ...(o.qos ? ['--qos', o.qos] : [])];
  const slurm = async (command: string, args: string[]) => {
    try {
      return (await run(command, args, { env, timeout: 30_000, encoding: 'utf8' })).stdout;
    } catch (err) {
      const said = (err as { stderr?: string }).stderr?.trim().split('\n').at(-1) || (err as Error).message.split('\n')[0];
      throw new Error(`--executor slurm: ${command} failed (${said}): is Slurm installed, and SLURM_CONF set?`);
    }
  };
  const nodes = slurmNodes(await slurm('sinfo', ['-h', '-o', '%G|%m|%c', ...partition]));
  if (nodes.cpus === 0) throw new Error(`--executor slurm: sinfo lists no nodes${o.partition ? ` in partition ${o.partition}` : ''}: check --slurm-partition`);
  const token = join(jobsDir, `.shared-${process.pid}-${Date.now()}`);
  const id = (await slurm('sbatch', ['--parsable', '--job-name', 'khd:check', '--output', '/dev/null', '--time', '1', ...partition, ...charged, ...(o.sbatchArgs ?? []), '--wrap', `echo ok > ${token}`])).trim().split(';')[0]!;
  const notShared = `a Slurm job could not write ${jobsDir}: the nodes must see the data dir at the same path (a shared filesystem)`;
  /** 'shared' once the file is here; 'pending' while Slurm holds the job; 'not shared' when it ended and the file never showed. */
  const check = async (until: number): Promise<'shared' | 'pending' | 'not shared'> => {
    let endedAt: number | undefined;
    while (Date.now() < until || endedAt !== undefined) {
      if (existsSync(token)) {
        rmSync(token, { force: true });
        return 'shared';
      }
      const state = (await slurm('squeue', ['-h', '-j', id, '-o', '%T']).catch(() => '')).trim();
      if (state === 'PENDING' && endedAt === undefined) return 'pending';
      if (state === '' || ENDED.test(state)) endedAt ??= Date.now();
      if (endedAt !== undefined && Date.now() - endedAt > CHECK_WAIT_MS) return 'not shared';
      await new Promise((r) => setTimeout(r, CHECK_POLL_MS));
    }
    return 'pending';
  };
  const first = await check(Date.now() + CHECK_WAIT_MS);
  if (first === 'not shared') throw new Error(`--executor slurm: ${notShared}`);
  if (first === 'pending') {
    warn(`--executor slurm: the cluster is busy: the check that the nodes see the data dir (job ${id}) runs when a node is free`);
    const later = async () => {
      for (;;) {
        const result = await check(Date.now() + CHECK_WAIT_MS);
        if (result === 'shared') return;
        if (result === 'not shared') return warn(`warning: ${notShared}; sessions will fail until it does`);
        await new Promise((r) => setTimeout(r, 5_000).unref());
      }
    };
    void later();
  }
  return { executor: new SlurmExecutor({ local, jobsDir, nodeGpus: nodes.gpus, ...o }), nodes };
}
