import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BoardRow } from '../../src/protocol/types.js';
import { exited, khd, REPO_ROOT, spawnServer, type ServerProcess } from '../helpers/binary.js';

// The medical example end to end with the built binary: prepare the WDBC dataset, train the
// numpy baseline, test-submit, submit, and read the leaderboard.
const EXAMPLE = join(REPO_ROOT, 'examples/breast_cancer');
let work: string;
let server: ServerProcess;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'khd-bc-'));
  const base = { PATH: process.env.PATH, HOME: work, KHD_CONFIG_DIR: join(work, 'config'), KHD_NO_KEYRING: '1', KHD_ADMIN_PASSWORD: 'bc-admin-password' };
  server = await spawnServer(join(work, 'data'), base);
  env = { ...base, KHD_SERVER: server.url };
  await khd(['login', '-u', 'admin', '--password-stdin'], { env, input: 'bc-admin-password' });
});

afterAll(async () => {
  server.child.kill('SIGTERM');
  await exited(server.child);
  rmSync(work, { recursive: true, force: true });
});

describe('examples/breast_cancer', () => {
  it('trains, test-submits, submits and reaches the leaderboard with a score of about 0.9 or more', async () => {
    const folder = join(work, 'breast_cancer');
    expect(execFileSync('python3', [join(EXAMPLE, 'prepare_dataset.py'), folder], { encoding: 'utf8' })).toContain(
      'train 398, test 114, test_submit 57 cases',
    );
    const push = await khd(['dataset', 'push', 'breast_cancer', folder, '--leaderboard', '--metric', 'custom', '-m', 'WDBC'], { env });
    expect(push.code, push.stderr).toBe(0);

    const run = await khd(['run', '-d', 'breast_cancer', '-i'], { env, cwd: EXAMPLE });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('epoch 30: loss');
    expect(run.stderr).not.toContain('breast_cancer.csv');
    const name = /Session (\S+) is started/.exec(run.stdout)![1]!;

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
    expect(board).toEqual([expect.objectContaining({ rank: 1, name, score, model: 'best', team: 'admin', count: 1 })]);
  });
});
