import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCluster {
  /** SLURM_CONF, for the Slurm commands. */
  env: NodeJS.ProcessEnv;
  /** A folder for jobs' scripts and output. */
  jobsDir: string;
  stop(): Promise<void>;
}

/** The node's memory as slurm.conf declares it: a session asks for at most this (the server's --memory cap). */
export const TEST_NODE_MEMORY_MB = 8000;

export const HAS_SLURM = spawnSync('sh', ['-c', 'command -v slurmctld && command -v slurmd && command -v munged && command -v sbatch']).status === 0;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * A one-machine Slurm cluster of its own (munged, slurmctld, slurmd as root) in a temp folder,
 * on free ports, with two fake GPUs as GRES (character devices made with mknod), as
 * scripts/slurm-dev.sh starts one for a person. The daemons are stopped by stop().
 */
export async function startTestCluster(): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'khd-slurm-'));
  for (const sub of ['state', 'spool', 'dev', 'jobs']) mkdirSync(join(dir, sub));
  for (const i of [0, 1]) execFileSync('mknod', [join(dir, 'dev', `nvidia${i}`), 'c', '195', String(i)]);
  const host = hostname().split('.')[0]!;
  const [ctld, slurmd] = [await freePort(), await freePort()];
  const cpus = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  writeFileSync(join(dir, 'slurm.conf'), [
    'ClusterName=khdtest', `SlurmctldHost=${host}`, `SlurmctldPort=${ctld}`, `SlurmdPort=${slurmd}`,
    'AuthType=auth/munge', `AuthInfo=socket=${join(dir, 'munge.sock')}`,
    `StateSaveLocation=${join(dir, 'state')}`, `SlurmdSpoolDir=${join(dir, 'spool')}`,
    `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`, `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
    `SlurmctldLogFile=${join(dir, 'slurmctld.log')}`, `SlurmdLogFile=${join(dir, 'slurmd.log')}`,
    'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'SelectType=select/cons_tres', 'SelectTypeParameters=CR_Core',
    'GresTypes=gpu', 'SlurmUser=root', 'ReturnToService=2', 'MpiDefault=none', 'JobAcctGatherType=jobacct_gather/none',
    'AccountingStorageType=accounting_storage/none', 'MinJobAge=300', 'KillWait=5',
    // Batch jobs scheduled at once, as docs/deploy.md advises (2.9 s from sbatch to running without it here).
    'SchedulerParameters=batch_sched_delay=0',
    `NodeName=${host} CPUs=${cpus} RealMemory=${TEST_NODE_MEMORY_MB} Gres=gpu:2 State=UNKNOWN`,
    `PartitionName=khd Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'gres.conf'), `NodeName=${host} Name=gpu File=${join(dir, 'dev', 'nvidia')}[0-1]\n`);
  const env = { SLURM_CONF: join(dir, 'slurm.conf') };
  const daemon = (cmd: string, args: string[]) => execFileSync(cmd, args, { env: { ...process.env, ...env }, stdio: 'ignore' });
  daemon('munged', [`--socket=${join(dir, 'munge.sock')}`, '--key-file=/etc/munge/munge.key', `--pid-file=${join(dir, 'munged.pid')}`, `--log-file=${join(dir, 'munged.log')}`, `--seed-file=${join(dir, 'munge.seed')}`, '--force']);
  daemon('slurmctld', ['-i']);
  daemon('slurmd', []);
  // The node is up when sinfo says idle.
  for (let i = 0; i < 200; i++) {
    const out = spawnSync('sinfo', ['-h', '-o', '%T'], { env: { ...process.env, ...env }, encoding: 'utf8' }).stdout;
    if (/idle/.test(out)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    env,
    jobsDir: join(dir, 'jobs'),
    async stop() {
      const pids: number[] = [];
      for (const file of ['slurmd.pid', 'slurmctld.pid', 'munged.pid']) {
        try {
          const pid = Number(readFileSync(join(dir, file), 'utf8').trim());
          process.kill(pid, 'SIGTERM');
          pids.push(pid);
        } catch {
          // Not running.
        }
      }
      // Gone before their folder is: they write their state on the way out.
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 300 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
