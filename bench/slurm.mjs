// A session through Slurm against the same session on the local executor: the overhead of a
// batch job (sbatch, the job's start on the node, its output read from the shared folder).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_PASSWORD, KHD, median, projectWith, run, spread, startBenchServer } from './server.mjs';

const SLURM_DEV = fileURLToPath(new URL('../scripts/slurm-dev.sh', import.meta.url));
const range = (xs) => spread(xs, 's', 2);

export async function benchSlurm(runs) {
  const name = 'khd run -i through Slurm';
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v slurmctld && command -v sbatch']).status !== 0) {
    return [{ name, khd: 'not measured: needs root and slurm-wlm', baseline: '', ratio: 1, target: '' }];
  }
  const work = mkdtempSync(join(tmpdir(), 'khd-bench-slurm-'));
  const cluster = join(work, 'cluster');
  execFileSync(SLURM_DEV, [cluster], { stdio: 'ignore' });
  const slurmEnv = { ...process.env, SLURM_CONF: join(cluster, 'slurm.conf') };
  let local;
  let slurm;
  try {
    local = await startBenchServer(join(work, 'local'));
    slurm = await startBenchServer(join(work, 'slurm'), ['--executor', 'slurm'], slurmEnv);
    const login = async (server, dir) => {
      const env = { ...slurmEnv, KHD_SERVER: server.url, KHD_CONFIG_DIR: join(work, dir), KHD_NO_KEYRING: '1' };
      await run(process.execPath, [KHD, 'login', '-u', 'admin', '--password-stdin'], { env, input: BENCH_PASSWORD });
      return env;
    };
    const [localEnv, jobEnv] = [await login(local, 'local-config'), await login(slurm, 'slurm-config')];
    const project = projectWith(join(work, 'project'), 'print("hello")\n');
    const once = async (env) => (await run(process.execPath, [KHD, 'run', '-i', '-g', '0', '--memory', '2G'], { env, cwd: project })).seconds;
    await once(localEnv);
    await once(jobEnv);
    const a = [];
    const b = [];
    for (let i = 0; i < runs; i++) {
      a.push(await once(localEnv));
      b.push(await once(jobEnv));
    }
    return [{ name, khd: `${median(b).toFixed(2)} s (${range(b)})`, baseline: `${median(a).toFixed(2)} s (${range(a)}) on the local executor`, ratio: median(b) / median(a), target: 'a second or two of overhead' }];
  } finally {
    local?.stop();
    slurm?.stop();
    execFileSync(SLURM_DEV, [cluster, 'stop'], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
}
