import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BoardRow, SessionInfo } from '../../src/protocol/types.js';
import { exited, khd, REPO_ROOT, spawnServer, type ServerProcess } from '../helpers/binary.js';
import { HAS_SLURM, startTestCluster, type TestCluster } from '../helpers/slurm.js';

// The medical examples end to end with the built binary, on Debian's Python (its numpy links
// BLAS through /etc/alternatives; python3-torch): prepare the WDBC dataset in NSML's layout,
// train the numpy and the PyTorch baselines, test-submit, submit, and read the leaderboard. The
// same tests on the local executor and, where Slurm is installed (CI), with --executor slurm on a
// one-machine cluster: every session, submit session and scorer a batch job.
const EXAMPLES_ON = ['local', ...(HAS_SLURM && process.getuid?.() === 0 ? ['slurm'] : [])] as const;
const EXAMPLE = join(REPO_ROOT, 'examples/breast_cancer');
const TORCH_EXAMPLE = join(REPO_ROOT, 'examples/breast_cancer_torch');
const SYSTEM_PYTHON = '/usr/bin/python3';
describe.each(EXAMPLES_ON)('examples/breast_cancer, --executor %s', (executor) => {
  let work: string;
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;
  let cluster: TestCluster | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'khd-bc-'));
    const base = { PATH: process.env.PATH, HOME: work, KHD_CONFIG_DIR: join(work, 'config'), KHD_NO_KEYRING: '1', KHD_ADMIN_PASSWORD: 'bc-admin-password' };
    if (executor === 'slurm') cluster = await startTestCluster();
    server = await spawnServer(join(work, 'data'), { ...base, ...cluster?.env }, ['--python', SYSTEM_PYTHON, '--executor', executor]);
    env = { ...base, KHD_SERVER: server.url };
    await khd(['login', '-u', 'admin', '--password-stdin'], { env, input: 'bc-admin-password' });
  }, 120_000);

  afterAll(async () => {
    server.child.kill('SIGTERM');
    await exited(server.child);
    await cluster?.stop();
    rmSync(work, { recursive: true, force: true });
  });

    it("pushes the dataset in NSML's layout, its labels kept from submits", async () => {
      const folder = join(work, 'breast_cancer');
      expect(execFileSync('python3', [join(EXAMPLE, 'prepare_dataset.py'), folder], { encoding: 'utf8' })).toContain(
        'train 398, test 114, test_submit 57 cases',
      );
      const push = await khd(['dataset', 'push', 'breast_cancer', folder, '--leaderboard', '--metric', 'custom', '-m', 'WDBC'], { env });
      expect(push.code, push.stderr).toBe(0);
      expect(push.stderr).toContain(
        '  training sessions see DATASET_PATH/train: 1 file\n' +
          '  submits see DATASET_PATH/test: test/, 1 file; labels, for the scorer only: test/test_label\n' +
          '  test submits (-t) see DATASET_PATH/test: test_submit/, 1 file; labels, for the scorer only: test_submit/test_label\n' +
          "  scored by the dataset's evaluation.py, on a leaderboard (higher is better)\n" +
          '  kept by the server: data_loader.py, evaluation.py\n' +
          '  a submitted checkpoint may be up to 300 MB (push with --model-size-limit to allow larger models)\n',
      );
    });

    it("runs Debian's numpy in the sandbox, as the session's uid, under a root server", async () => {
      const probe = mkdtempSync(join(work, 'probe-'));
      writeFileSync(join(probe, 'main.py'), 'import os, numpy\nprint(os.getuid() != 0, numpy.__file__)\nprint((numpy.ones((2, 2)) @ numpy.ones((2, 2))).sum())\n');
      const run = await khd(['run', '-i'], { env, cwd: probe });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toContain(`True /usr/lib/python3/dist-packages/numpy/__init__.py\n8.0\n`);
    });

    it('trains the numpy baseline, test-submits, submits and reaches the leaderboard with a score of about 0.9 or more', async () => {
      const run = await khd(['run', '-d', 'breast_cancer', '-i'], { env, cwd: EXAMPLE });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('epoch 30: loss');
      expect(run.stderr).not.toContain('breast_cancer.csv');
      const name = /Session (\S+) is (?:started|queued)/.exec(run.stdout)![1]!;

      const models = (await khd(['model', 'ls', name], { env })).stdout;
      expect(models).toMatch(/^best\s/m);
      expect(models).toMatch(/^30\s/m);

      const test = await khd(['submit', '-t', name, 'best'], { env });
      expect(test.code, test.stderr).toBe(0);
      expect(Number(/Score: (\S+)/.exec(test.stdout)![1])).toBeGreaterThan(0.85);

      const real = await khd(['submit', name, 'best'], { env });
      expect(real.code, real.stderr).toBe(0);
      const score = Number(/Score: (\S+)/.exec(real.stdout)![1]);
      expect(score).toBeGreaterThanOrEqual(0.9);

      const board = JSON.parse((await khd(['dataset', 'board', 'breast_cancer', '--json'], { env })).stdout) as BoardRow[];
      expect(board).toEqual([expect.objectContaining({ rank: 1, name, score: expect.closeTo(score, 5), model: 'best', team: 'admin', count: 1 })]);
    });

    it('trains the PyTorch baseline on the same dataset and reaches the leaderboard (CPU)', async () => {
      // Another team's: the admin's team has had its counted submit for the hour.
      expect((await khd(['user', 'add', 'lee', '--team', 'torch', '--password-stdin'], { env, input: 'lee-password-1' })).code).toBe(0);
      const lee = { ...env, KHD_CONFIG_DIR: join(work, 'lee-config') };
      expect((await khd(['login', '-u', 'lee', '--password-stdin'], { env: lee, input: 'lee-password-1' })).code).toBe(0);
      const run = await khd(['run', '-d', 'breast_cancer', '-i'], { env: lee, cwd: TORCH_EXAMPLE });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toMatch(/epoch 39: loss \d\.\d+, valid acc 0\.9\d+\n/);
      expect(run.stderr).not.toContain('nsml.report');
      const name = /Session (\S+) is (?:started|queued)/.exec(run.stdout)![1]!;
      const ps = JSON.parse((await khd(['ps', '-a', '--json'], { env: lee })).stdout) as SessionInfo[];
      // A list and a tensor, reported as they are: the last value and the number.
      expect(ps.find((s) => s.name === name)!.summary).toMatchObject({ epoch_total: 40, train__loss: expect.any(Number), valid__acc: expect.any(Number) });

      const test = await khd(['submit', '-t', name, 'best'], { env: lee });
      expect(test.code, test.stderr).toBe(0);
      expect(Number(/Score: (\S+)/.exec(test.stdout)![1])).toBeGreaterThan(0.85);
      const real = await khd(['submit', name, 'best'], { env: lee });
      expect(real.code, real.stderr).toBe(0);
      const score = Number(/Score: (\S+)/.exec(real.stdout)![1]);
      expect(score).toBeGreaterThanOrEqual(0.85);
      const board = JSON.parse((await khd(['dataset', 'board', 'breast_cancer', '--json'], { env: lee })).stdout) as BoardRow[];
      expect(board).toContainEqual(expect.objectContaining({ name, score: expect.closeTo(score, 5), model: 'best', team: 'torch', count: 1 }));
    });
});
