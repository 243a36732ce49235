// The whole loop with `--executor slurm` on a one-machine cluster of the test's own: run, logs,
// ps, stop, a test submit and a counted one (their sessions and the scorer are jobs too), the board.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { BoardRow } from '../../src/protocol/types.js';
import { project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';
import { HAS_SLURM, startTestCluster, TEST_NODE_MEMORY_MB, type TestCluster } from '../helpers/slurm.js';
import { submitDataset, SUBMIT_PROJECT_PY } from '../helpers/submit-project.js';

let cluster: TestCluster;
let server: TestServer;
let admin: Participant;
const cleanups: (() => void)[] = [];

describe.runIf(HAS_SLURM && process.getuid?.() === 0)('khd server --executor slurm', () => {
  beforeAll(async () => {
    cluster = await startTestCluster();
    // Sessions ask Slurm for at most the node's memory, as an organiser sets the cap to the nodes'.
    server = await startTestServer({ executor: 'slurm', slurm: { env: cluster.env, pollMs: 100 }, maxGpusPerTeam: 1, sessionLimits: { maxMemoryBytes: TEST_NODE_MEMORY_MB * 1024 ** 2 } });
    admin = new Participant(server.url);
    await admin.login('admin', ADMIN_PASSWORD);
  }, 120_000);
  afterAll(async () => {
    admin?.cleanup();
    cleanups.forEach((c) => c());
    await server?.stop();
    await cluster?.stop();
  });

  it('runs, logs and lists a session as a Slurm job, with its GPU from Slurm', async () => {
    const r = await admin.runCode('import os\nprint("visible", os.environ["CUDA_VISIBLE_DEVICES"])\nprint("done")\n', ['-g', '1', '-i']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/visible [01]\ndone\n/);
    expect(await admin.session(r.name)).toMatchObject({ status: 'Exited', exitCode: 0 });
    expect((await admin.khd(['logs', r.name])).stdout).toMatch(/^visible [01]\ndone\n$/);
  });

  it('stops a running job; one cancelled in Slurm from outside ends with the reason', async () => {
    const running = await admin.runCode('import time\nprint("up", flush=True)\ntime.sleep(300)\n', ['-g', '0']);
    await expect.poll(async () => (await admin.khd(['logs', running.name])).stdout).toContain('up');
    expect((await admin.khd(['stop', running.name])).code).toBe(EXIT.ok);
    await expect.poll(async () => (await admin.session(running.name)).status).toBe('Stopped');

    const other = await admin.runCode('import time\nprint("up", flush=True)\ntime.sleep(300)\n', ['-g', '0']);
    await expect.poll(async () => (await admin.khd(['logs', other.name])).stdout).toContain('up');
    const env = { ...process.env, ...cluster.env };
    const id = execFileSync('squeue', ['-h', '-o', '%i %j'], { env, encoding: 'utf8' }).split('\n').find((l) => l.includes(`khd:${other.name}`))!.split(' ')[0]!;
    execFileSync('scancel', [id], { env });
    await expect.poll(async () => (await admin.session(other.name)).reason).toBe('cancelled in Slurm (scancel, by an administrator)');
  });

  it('test-submits and submits: the submit session and the scorer run as jobs; the board has the score', async () => {
    const data = submitDataset();
    cleanups.push(data.cleanup);
    expect((await admin.khd(['dataset', 'push', 'toy', data.root, '--leaderboard'])).code).toBe(EXIT.ok);
    const code = project({ 'main.py': SUBMIT_PROJECT_PY });
    cleanups.push(code.cleanup);
    const trained = await admin.khd(['run', '-d', 'toy', '-g', '0', '-i'], { cwd: code.root });
    expect(trained.code, trained.stderr).toBe(EXIT.ok);
    const name = /Session (\S+) is (?:started|queued)/.exec(trained.stdout)![1]!;
    const test = await admin.khd(['submit', '-t', name, 'best']);
    expect(test.code, test.stderr).toBe(EXIT.ok);
    expect(test.stdout).toMatch(/Score: 1\n$/);
    expect((await admin.khd(['submit', name, 'best'])).stdout).toBe('Score: 0.75\n');
    const board = JSON.parse((await admin.khd(['dataset', 'board', 'toy', '--json'])).stdout) as BoardRow[];
    expect(board).toMatchObject([{ rank: 1, name, score: 0.75 }]);
  });

  it("says why a session waits: its team's GPU limit (not submitted to Slurm), or Slurm's own reason", async () => {
    const [kim, lee, choi] = [await admin.addUser('kim', 'team-a'), await admin.addUser('lee', 'team-b'), await admin.addUser('choi', 'team-c')];
    cleanups.push(() => [kim, lee, choi].forEach((p) => p.cleanup()));
    const sleeper = 'import time\nprint("up", flush=True)\ntime.sleep(300)\n';
    const one = ['-g', '1', '--cpus', '1'];
    const first = await kim.runCode(sleeper, one);
    await expect.poll(async () => (await kim.session(first.name)).status).toBe('Running');
    const held = await kim.runCode(sleeper, one);
    expect(held.stdout).toBe(`Session ${held.name} is queued: your team's GPU limit (1) is in use\n`);
    const env = { ...process.env, ...cluster.env };
    const jobs = () => execFileSync('squeue', ['-h', '-o', '%j'], { env, encoding: 'utf8' });
    expect(jobs()).not.toContain(`khd:${held.name}`);
    // Another team takes the node's other GPU; a third team's session waits in Slurm, which says why.
    const other = await lee.runCode(sleeper, one);
    await expect.poll(async () => (await lee.session(other.name)).status).toBe('Running');
    const third = await choi.runCode(sleeper, one);
    await expect.poll(async () => (await choi.khd(['ps'])).stdout).toMatch(/Queued: the cluster's GPUs or nodes are in use \(Slurm: (Resources|Priority)\)/);
    expect(await choi.session(third.name)).toMatchObject({ status: 'Queued', startedAt: null });

    for (const [p, s] of [[choi, third], [kim, held], [kim, first], [lee, other]] as const) expect((await p.khd(['stop', s.name])).code).toBe(EXIT.ok);
    for (const [p, s] of [[choi, third], [kim, held], [kim, first], [lee, other]] as const) {
      await expect.poll(async () => (await p.session(s.name)).status).toBe('Stopped');
    }
    await expect.poll(jobs).not.toContain('khd:');
  });
});
