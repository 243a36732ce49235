// Slurm jobs outlive the khd server: killed with SIGKILL while a session's job prints, and started
// again, the server follows the job again. Nothing Slurm still runs is marked failed, and the log
// has every line exactly once, for `khd logs` and for a `khd logs -f` that waited across the restart.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionInfo } from '../../src/protocol/types.js';
import { collect, exited, khd, KHD_BIN, spawnServer, type ServerProcess } from '../helpers/binary.js';
import { project } from '../helpers/projects.js';
import { HAS_SLURM, startTestCluster, type TestCluster } from '../helpers/slurm.js';
import { submitDataset } from '../helpers/submit-project.js';

/** 1,500 lines as fast as it can, then waits for `go` beside it, then 1,500 more. */
const PRINTER_PY = `
import os, time
for i in range(1, 1501):
    print('tick', i, flush=True)
while not os.path.exists('go'):
    time.sleep(0.05)
for i in range(1501, 3001):
    print('tick', i, flush=True)
`;
/** A KHD-style project whose inference waits for `go` in its folder (or hangs, with `--hang yes`). */
const WAITING_SUBMIT_PY = `
import argparse, os, time
import nsml
p = argparse.ArgumentParser()
p.add_argument('--mode', default='train')
p.add_argument('--pause', type=int, default=0)
p.add_argument('--iteration', default='0')
p.add_argument('--hang', default='no')
args = p.parse_args()
def save(d):
    open(os.path.join(d, 'm.txt'), 'w').write('1')
def load(d):
    pass
def infer(test_path):
    print('inferring', flush=True)
    while args.hang == 'yes' or not os.path.exists('go'):
        time.sleep(0.05)
    return ['1' for _ in sorted(os.listdir(test_path))]
nsml.bind(save=save, load=load, infer=infer)
if args.pause:
    nsml.paused(scope=locals())
if args.mode == 'train':
    nsml.save('best')
    print('trained')
`;

const EVERY_TICK = `${Array.from({ length: 3000 }, (_, i) => `tick ${i + 1}`).join('\n')}\n`;

let cluster: TestCluster;
let work: string;
let data: string;
let server: ServerProcess;
let env: NodeJS.ProcessEnv;

const start = (port?: string) => spawnServer(data, { ...env, ...cluster.env }, ['--executor', 'slurm', ...(port ? ['--port', port] : [])]);
const sessions = async (): Promise<SessionInfo[]> => JSON.parse((await khd(['ps', '-a', '--json'], { env })).stdout) as SessionInfo[];
const session = async (name: string): Promise<SessionInfo> => (await sessions()).find((s) => s.name === name)!;
/** The work folder of the session started last. */
const lastWorkFolder = () => {
  const root = join(data, 'sessions');
  const last = Math.max(...readdirSync(root).filter((d) => /^\d+$/.test(d)).map(Number));
  return join(root, String(last), 'work');
};

describe.runIf(HAS_SLURM && process.getuid?.() === 0)('khd server --executor slurm across restarts', () => {
  beforeAll(async () => {
    cluster = await startTestCluster();
    work = mkdtempSync(join(tmpdir(), 'khd-e2e-slurm-'));
    data = join(work, 'data');
    env = { PATH: process.env.PATH, HOME: work, KHD_CONFIG_DIR: join(work, 'config'), KHD_NO_KEYRING: '1', KHD_ADMIN_PASSWORD: 'admin-password-1' };
    server = await start();
    env.KHD_SERVER = server.url;
    expect((await khd(['login', '-u', 'admin', '--password-stdin'], { env, input: 'admin-password-1\n' })).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    server?.child.kill('SIGTERM');
    if (server) await exited(server.child);
    await cluster?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('re-attaches after a SIGKILL mid-output: the session goes on, every line is logged once', async () => {
    const code = project({ 'main.py': PRINTER_PY });
    try {
      const run = await khd(['run', '-g', '0'], { env, cwd: code.root });
      expect(run.code, run.stderr).toBe(0);
      const name = /Session (\S+) is (?:started|queued)/.exec(run.stdout)![1]!;
      const follower = collect(spawn(process.execPath, [KHD_BIN, 'logs', name, '-f'], { env }));
      // Killed while the job prints: some of its lines are logged, others not yet.
      await expect.poll(async () => (await khd(['logs', name], { env })).stdout.split('\n').length, { timeout: 60_000 }).toBeGreaterThan(100);
      server.child.kill('SIGKILL');
      await exited(server.child);

      server = await start(new URL(server.url).port);
      // Still Slurm's: running, not failed by the restart.
      expect(await session(name)).toMatchObject({ status: 'Running' });
      await expect.poll(async () => (await khd(['logs', name], { env })).stdout, { timeout: 60_000 }).toContain('tick 1500\n');
      const sessions = join(data, 'sessions');
      const folder = readdirSync(sessions).find((d) => existsSync(join(sessions, d, 'work', 'main.py')))!;
      writeFileSync(join(sessions, folder, 'work', 'go'), '');

      await expect.poll(async () => (await session(name)).status, { timeout: 60_000 }).toBe('Exited');
      expect((await khd(['logs', name], { env })).stdout).toBe(EVERY_TICK);
      const followed = await follower;
      expect(followed.code, followed.stderr).toBe(0);
      expect(followed.stdout).toBe(EVERY_TICK);
    } finally {
      code.cleanup();
    }
  }, 180_000);

  it('a graceful stop of the server leaves the job running; the next start follows it to its end', async () => {
    const code = project({ 'main.py': 'import os, time\nprint("before", flush=True)\nwhile not os.path.exists("go"):\n    time.sleep(0.05)\nprint("after", flush=True)\n' });
    try {
      const run = await khd(['run', '-g', '0'], { env, cwd: code.root });
      const name = /Session (\S+) is (?:started|queued)/.exec(run.stdout)![1]!;
      await expect.poll(async () => (await khd(['logs', name], { env })).stdout, { timeout: 60_000 }).toBe('before\n');
      server.child.kill('SIGTERM');
      expect(await exited(server.child)).toBe(0);
      const sessions = join(data, 'sessions');
      const folder = readdirSync(sessions).find((d) => existsSync(join(sessions, d, 'work', 'main.py')) && !existsSync(join(sessions, d, 'work', 'go')))!;
      writeFileSync(join(sessions, folder, 'work', 'go'), '');

      server = await start(new URL(server.url).port);
      await expect.poll(async () => (await session(name)).status, { timeout: 60_000 }).toBe('Exited');
      expect((await khd(['logs', name], { env })).stdout).toBe('before\nafter\n');
    } finally {
      code.cleanup();
    }
  }, 180_000);

  it('a submit whose session outlives a SIGKILL of the server is scored after the restart', async () => {
    const toy = submitDataset();
    const code = project({ 'main.py': WAITING_SUBMIT_PY });
    try {
      expect((await khd(['dataset', 'push', 'toy', toy.root, '--leaderboard'], { env })).code).toBe(0);
      const trained = await khd(['run', '-d', 'toy', '-g', '0', '-i'], { env, cwd: code.root });
      expect(trained.code, trained.stderr).toBe(0);
      const name = /Session (\S+) is (?:started|queued)/.exec(trained.stdout)![1]!;
      const submitting = collect(spawn(process.execPath, [KHD_BIN, 'submit', name, 'best'], { env }));
      const submitSession = async () => (await sessions()).find((s) => s.type === 'submit')?.name;
      await expect.poll(submitSession, { timeout: 60_000 }).toBeDefined();
      await expect.poll(async () => (await khd(['logs', (await submitSession())!], { env })).stdout, { timeout: 60_000 }).toContain('inferring');
      server.child.kill('SIGKILL');
      await exited(server.child);

      server = await start(new URL(server.url).port);
      expect(await session((await submitSession())!)).toMatchObject({ status: 'Running' });
      writeFileSync(join(lastWorkFolder(), 'go'), '');
      const submitted = await submitting;
      expect(submitted.code, submitted.stderr).toBe(0);
      expect(submitted.stdout).toBe('Score: 0.75\n');
      expect(JSON.parse((await khd(['dataset', 'board', 'toy', '--json'], { env })).stdout)).toMatchObject([{ name, score: 0.75 }]);
    } finally {
      toy.cleanup();
      code.cleanup();
    }
  }, 240_000);

  it("a submit's inference deadline still holds after the restart: the hung session is stopped", async () => {
    const toy = submitDataset();
    const code = project({ 'main.py': WAITING_SUBMIT_PY });
    try {
      expect((await khd(['dataset', 'push', 'toy2', toy.root, '--leaderboard', '--infer-timeout', '5s'], { env })).code).toBe(0);
      const trained = await khd(['run', '-d', 'toy2', '-g', '0', '-i', '-a', '--hang yes'], { env, cwd: code.root });
      expect(trained.code, trained.stderr).toBe(0);
      const name = /Session (\S+) is (?:started|queued)/.exec(trained.stdout)![1]!;
      const submitting = collect(spawn(process.execPath, [KHD_BIN, 'submit', '-t', name, 'best'], { env }));
      const submitSession = async () => (await sessions()).find((s) => s.type === 'submit(test)')?.name;
      await expect.poll(submitSession, { timeout: 60_000 }).toBeDefined();
      await expect.poll(async () => (await khd(['logs', (await submitSession())!], { env })).stdout, { timeout: 60_000 }).toContain('inferring');
      server.child.kill('SIGKILL');
      await exited(server.child);

      server = await start(new URL(server.url).port);
      const submitted = await submitting;
      expect(submitted.code).toBe(1);
      expect(submitted.stderr).toMatch(/InferTimeout: loading and inference did not finish within 5 s/);
      await expect.poll(async () => (await session((await submitSession())!)).status, { timeout: 60_000 }).not.toBe('Running');
    } finally {
      toy.cleanup();
      code.cleanup();
    }
  }, 240_000);
});
