import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { make, run, workFolders } from '../../../test/helpers/executor.js';
import { HAS_SLURM, startTestCluster, type TestCluster } from '../../../test/helpers/slurm.js';
import { SlurmExecutor } from './slurm-executor.js';

// Sessions as Slurm jobs on a one-machine cluster of the test's own: the same sandboxed launch,
// the job's output read as it grows, stops through scancel, Slurm's end states as reasons.
const work = workFolders();
let cluster: TestCluster;
let executor: SlurmExecutor;

describe.runIf(HAS_SLURM && process.getuid?.() === 0)('SlurmExecutor', () => {
  beforeAll(async () => {
    cluster = await startTestCluster();
    executor = new SlurmExecutor({ local: make({})(), jobsDir: cluster.jobsDir, env: cluster.env, pollMs: 100, stopGraceMs: 2000 });
  }, 60_000);
  afterAll(async () => cluster?.stop());

  it('runs the session as a job in the sandbox: its output line by line, its exit code', async () => {
    const { execution, lines } = run(executor, work.path, 'import os, sys\nprint("in job", os.environ.get("SLURM_JOB_ID") is None)\nprint("err", file=sys.stderr)\nsys.exit(3)\n');
    const result = await execution.result;
    expect(result).toMatchObject({ exitCode: 3, stopped: false });
    // The sandbox's environment is the launch's own: Slurm's variables do not leak in.
    expect(lines).toEqual([['stdout', 'in job True'], ['stderr', 'err']]);
  });

  it('gives the job the GPUs Slurm allocated (--gres), in CUDA_VISIBLE_DEVICES', async () => {
    writeFileSync(join(work.path, 'main.py'), 'import os\nprint("visible", os.environ["CUDA_VISIBLE_DEVICES"], "num", os.environ["KHD_GPU_NUM"])\n');
    const lines: string[] = [];
    const execution = executor.start(
      { workDir: work.path, datasetName: null, datasetParts: [], mounts: [], env: {}, sessionName: 'kim/None/2', entry: 'main.py', args: [], gpuIds: [5] },
      (_s, batch) => lines.push(...batch),
    );
    expect(await execution.result).toMatchObject({ exitCode: 0 });
    expect(lines).toEqual([expect.stringMatching(/^visible [01] num 1$/)]);
  });

  it('stops a running job: scancel TERM, and the session is stopped', async () => {
    const { execution, lines } = run(executor, work.path, 'import time\nprint("up", flush=True)\ntime.sleep(120)\n');
    await expect.poll(() => lines.length).toBe(1);
    execution.stop();
    expect(await execution.result).toMatchObject({ stopped: true });
  });

  it('ends the session with a reason when an administrator cancels the job in Slurm', async () => {
    const { execution, lines } = run(executor, work.path, 'import time\nprint("up", flush=True)\ntime.sleep(120)\n');
    await expect.poll(() => lines.length).toBe(1);
    const jobs = execFileSync('squeue', ['-h', '-o', '%i %j'], { env: { ...process.env, ...cluster.env }, encoding: 'utf8' }).trim().split('\n');
    const id = jobs.find((j) => j.includes('khd:kim/None/1'))!.split(' ')[0]!;
    execFileSync('scancel', [id], { env: { ...process.env, ...cluster.env } });
    expect(await execution.result).toMatchObject({ stopped: false, limit: 'cancelled in Slurm (scancel, by an administrator)' });
  });
});
