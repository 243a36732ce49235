import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { LogStream } from '../../protocol/types.js';
import { make, run, workFolders } from '../../../test/helpers/executor.js';
import { HAS_SLURM, startTestCluster, type TestCluster } from '../../../test/helpers/slurm.js';
import { executorUids } from '../../../test/helpers/uids.js';
import type { ExecSpec } from './executor.js';
import { SETPRIV } from './launch.js';
import { jobScript, SlurmExecutor, type SlurmOptions } from './slurm-executor.js';
import { UidPool } from './uids.js';

// Sessions as Slurm jobs on a one-machine cluster of the test's own: the same sandboxed launch,
// the job's output read as it grows, stops through scancel, Slurm's end states as reasons.
const work = workFolders();
let cluster: TestCluster;
let executor: SlurmExecutor;
/** A server's executor over the test cluster, its session uids a pool of its own (a restarted server has a new one). */
const slurmExecutor = (pool?: UidPool, more: Partial<SlurmOptions> = {}) =>
  new SlurmExecutor({ local: make(pool ? { uids: pool } : {})(), jobsDir: cluster.jobsDir, nodeGpus: 2, env: cluster.env, pollMs: 100, stopGraceMs: 2000, ...more });
const UIDS = executorUids(400, 4);

function spec(dir: string, code: string, gpus = 0): ExecSpec {
  writeFileSync(join(dir, 'main.py'), code);
  return { workDir: dir, datasetName: null, datasetParts: [], mounts: [], env: {}, sessionName: 'kim/None/3', entry: 'main.py', args: [], gpuIds: [...Array(gpus).keys()] };
}

describe.runIf(HAS_SLURM && process.getuid?.() === 0)('SlurmExecutor', () => {
  beforeAll(async () => {
    cluster = await startTestCluster();
    // A root server's: each session a uid of its own.
    executor = slurmExecutor(new UidPool(executorUids(410, 8)));
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

  it('stops a running job: scancel TERM reaches the code, which has the grace period to save', async () => {
    const code = 'import signal, sys, time\ndef term(*_):\n    time.sleep(0.5)\n    print("saved on TERM", flush=True)\n    sys.exit(0)\nsignal.signal(signal.SIGTERM, term)\nprint("up", flush=True)\ntime.sleep(120)\n';
    const { execution, lines } = run(executor, work.path, code);
    await expect.poll(() => lines.length).toBe(1);
    execution.stop();
    expect(await execution.result).toMatchObject({ stopped: true });
    expect(lines).toEqual([['stdout', 'up'], ['stdout', 'saved on TERM']]);
  });

  it('stops a job at the session time limit, to the second, with the reason', async () => {
    const { execution, lines } = run(executor, work.path, 'import time\nprint("up", flush=True)\ntime.sleep(120)\n', [], { wallMs: 2000 });
    const result = await execution.result;
    expect(result).toMatchObject({ timedOut: true, limit: 'time limit 2 s reached', exitCode: null });
    // On a loaded machine Python may take longer than the 2 s to start: the line is not asked for, only that nothing else came.
    expect(lines.filter(([, line]) => line !== 'up')).toEqual([]);
  });

  it('says why Slurm holds a job (its GPUs in use), and that it runs once placed', async () => {
    const sleeper = 'import time\nprint("up", flush=True)\ntime.sleep(120)\n';
    const placed: string[] = [];
    const [a, b] = [0, 1].map((i) => {
      const dir = join(work.path, `s${i}`);
      execFileSync('mkdir', [dir]);
      return executor.start(spec(dir, sleeper, 1), () => {}, { running: () => placed.push(`s${i}`) });
    });
    await expect.poll(() => placed.length).toBe(2);
    placed.sort();
    const held = executor.start(spec(work.path, 'print("placed")\n', 1), () => {}, { running: () => placed.push('held') });
    await expect.poll(() => held.waiting?.()).toMatch(/^the cluster's GPUs or nodes are in use \(Slurm: (Resources|Priority)\)$/);
    expect(placed).toEqual(['s0', 's1']);
    // One stopped while Slurm holds it is withdrawn from the queue.
    const withdrawn = executor.start(spec(work.path, 'print("never")\n', 1), () => {}, { running: () => placed.push('withdrawn') });
    await expect.poll(() => withdrawn.waiting?.()).toMatch(/\(Slurm: (Resources|Priority)\)$/);
    withdrawn.stop();
    expect(await withdrawn.result).toMatchObject({ stopped: true, exitCode: null });
    a!.stop();
    onTestFinished(async () => {
      b!.stop();
      await b!.result;
    });
    expect(await held.result).toMatchObject({ exitCode: 0 });
    expect(placed).toEqual(['s0', 's1', 'held']);
    expect(held.waiting?.()).toBeNull();
  });

  it('lets go of a job at shutdown and follows it again after the restart: every line once, its uid held', async () => {
    const code = 'import os, time\nprint("before", flush=True)\nwhile not os.path.exists("go"):\n    time.sleep(0.05)\nfor i in range(3):\n    print("after", i, flush=True)\n';
    const pool = new UidPool(UIDS);
    const first = slurmExecutor(pool);
    const lines: [LogStream, string, unknown][] = [];
    const sink = (stream: LogStream, batch: string[], marks?: unknown[]) => batch.forEach((l, i) => lines.push([stream, l, marks?.[i]]));
    let job = '';
    const execution = first.start(spec(work.path, code), sink, { submitted: (j) => (job = j) });
    await expect.poll(() => lines.length).toBe(1);
    expect(execution.detach!()).toBe(true);
    expect(await execution.result).toMatchObject({ detached: true });
    const { id, uid } = JSON.parse(job) as { id: string; uid: number };
    expect(uid).toBe(UIDS.first);
    // Still running in Slurm, its output still there.
    expect(execFileSync('squeue', ['-h', '-j', id, '-o', '%T'], { env: { ...process.env, ...cluster.env }, encoding: 'utf8' }).trim()).toBe('RUNNING');
    writeFileSync(join(work.path, 'go'), '');

    const restarted = new UidPool(UIDS);
    const again = slurmExecutor(restarted).attach(job, lines.at(-1)![2], sink);
    // The job's uid is not handed to another session while it runs.
    expect(restarted.inUse).toBe(1);
    expect(await again.result).toMatchObject({ exitCode: 0 });
    expect(lines.map(([, l]) => l)).toEqual(['before', 'after 0', 'after 1', 'after 2']);
    await expect.poll(() => restarted.inUse).toBe(0);
    expect(existsSync(join(cluster.jobsDir, `${id}.out`))).toBe(false);
  });

  it('ends a job Slurm no longer knows with the exit status it left, or says that nothing is known', async () => {
    writeFileSync(join(cluster.jobsDir, '990001.exit'), '3\n');
    writeFileSync(join(cluster.jobsDir, '990001.out'), 'last words\n');
    const lines: string[] = [];
    const known = executor.attach('{"id":"990001"}', [0, 0], (_s, batch) => lines.push(...batch));
    expect(await known.result).toMatchObject({ exitCode: 3 });
    expect(lines).toEqual(['last words']);
    const lost = executor.attach('{"id":"990002"}', undefined, () => {});
    expect(await lost.result).toMatchObject({ exitCode: null, limit: 'its Slurm job 990002 ended while the server was away, and Slurm no longer says how' });
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

describe.runIf(process.getuid?.() === 0)('the job script', () => {
  it('passes a stop that comes before the session’s processes exist on to them once they do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'khd-job-script-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const started = join(dir, 'started');
    const uid = executorUids(430, 1).first;
    const code = 'import time\nprint("up", flush=True)\ntime.sleep(120)\n';
    // The launch says it has begun, then takes a moment before anything runs as the session's
    // uid, as a sandbox being set up does. The stop comes in that moment.
    const launch = {
      command: '/bin/sh',
      args: ['-c', `touch ${started}; sleep 1; exec ${SETPRIV} --reuid=${uid} --regid=${uid} --clear-groups /usr/bin/python3 -c '${code}'`],
      env: {},
      uid,
      release: async () => {},
    };
    const job = spawn('/bin/sh', ['-c', jobScript(launch, dir)], { cwd: '/', env: { PATH: process.env.PATH, SLURM_JOB_ID: '7' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    job.stdout.on('data', (c: Buffer) => (out += c));
    const ended = new Promise<number | null>((resolve) => job.on('exit', (status) => resolve(status)));
    await expect.poll(() => existsSync(started)).toBe(true);
    job.kill('SIGTERM');
    // Lost, the stop would leave the code sleeping its 120 s (until the KILL, in a real job).
    expect(await ended).toBe(143);
    expect(readFileSync(join(dir, '7.exit'), 'utf8')).toBe('143\n');
  });
});
