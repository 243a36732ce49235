import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { SessionInfo } from '../../src/protocol/types.js';
import { treeKey } from '../../src/server/uploads/trees.js';
import { manifestOf } from '../helpers/craft-tar.js';
import { createUpload, sendPartialUpload, untilReceivingAgain } from '../helpers/raw-upload.js';
import { project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

const GPU_PY = `
import os, sys, time
print('visible', repr(os.environ.get('CUDA_VISIBLE_DEVICES')), flush=True)
time.sleep(float(sys.argv[1]))
`;

let server: TestServer;
let admin: Participant;
let root: string;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  server = await startTestServer({ gpus: 2 });
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  const p = project({ 'main.py': GPU_PY });
  cleanups.push(p.cleanup);
  root = p.root;
});
afterAll(async () => {
  admin.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

const nameOf = (stdout: string) => /^Session (\S+) is/.exec(stdout)![1]!;

async function info(name: string): Promise<SessionInfo> {
  const all = JSON.parse((await admin.khd(['ps', '-a', '--json'])).stdout) as SessionInfo[];
  return all.find((s) => s.name === name)!;
}

async function until(name: string, status: SessionInfo['status']): Promise<SessionInfo> {
  for (let i = 0; i < 200; i++) {
    const s = await info(name);
    if (s.status === status) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} never became ${status}`);
}

describe('GPUs from the server’s inventory', () => {
  it('hands out GPUs, queues what does not fit, and starts it when GPUs free up', async () => {
    const tooMany = await admin.khd(['run', '-g', '3'], { cwd: root });
    expect(tooMany.stderr).toBe('error: -g 3: the server has 2 GPU(s); ask for 2 or fewer\n');

    const big = nameOf((await admin.khd(['run', '-g', '2', '-a', '60'], { cwd: root })).stdout);
    const waiting = await admin.khd(['run', '-g', '1', '-a', '0'], { cwd: root });
    expect(waiting.stdout).toMatch(/^Session admin\/None\/\d+ is queued: waiting for a GPU \(next in line\)\n$/);
    const queued = nameOf(waiting.stdout);
    expect((await info(queued)).status).toBe('Queued');
    const queuedToo = nameOf((await admin.khd(['run', '-g', '1', '-a', '0'], { cwd: root })).stdout);
    expect(await info(queuedToo)).toMatchObject({ status: 'Queued', queueReason: 'waiting for a GPU (1 session ahead)' });
    expect((await admin.khd(['ps'])).stdout).toContain('Queued: waiting for a GPU (1 session ahead)');

    const cpuOnly = await admin.khd(['run', '-g', '0', '-a', '0', '-i'], { cwd: root });
    expect(cpuOnly.stdout).toContain("visible ''\n");

    for (let i = 0; i < 200 && !(await admin.khd(['logs', big])).stdout; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await admin.khd(['stop', queuedToo])).stderr).toBe(`✓ Stopped ${queuedToo}\n`);
    expect(await info(queuedToo)).toMatchObject({ status: 'Stopped', reason: 'stopped before it started' });

    expect((await admin.khd(['logs', big])).stdout).toBe("visible '0,1'\n");
    await admin.khd(['stop', big]);
    await until(queued, 'Exited');
    expect((await admin.khd(['logs', queued])).stdout).toMatch(/^visible '[01]'\n$/);
  });

  it('uses one GPU by default where the server has GPUs', async () => {
    const r = await admin.khd(['run', '-a', '0', '-i'], { cwd: root });
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/visible '[01]'\n/);
    expect((await info(nameOf(r.stdout))).gpus).toBe(1);
  });
});

describe('khd gpustat', () => {
  it("says why a running session's GPUs cannot be shown on a server without the NVIDIA driver, and when it has none", async () => {
    const held = await admin.runCode('import time\nprint("up", flush=True)\ntime.sleep(60)\n', ['-g', '1']);
    await expect.poll(async () => (await admin.session(held.name)).status).toBe('Running');
    const r = await admin.khd(['gpustat', held.name]);
    if (spawnSync('sh', ['-c', 'command -v nvidia-smi']).status === 0) expect(r.stdout).toMatch(/^index, name, utilization\.gpu/);
    else expect(r.stderr).toBe('error: this server has no NVIDIA driver (nvidia-smi is not installed): its GPUs cannot be shown\n');
    expect((await admin.khd(['stop', held.name])).code).toBe(EXIT.ok);
    await expect.poll(async () => (await admin.session(held.name)).status).toBe('Stopped');
    expect((await admin.khd(['gpustat', held.name])).stderr).toBe(`error: session ${held.name} is Stopped: its GPUs are shown while it runs\n`);
  });
});

describe('a team GPU limit (--max-gpus-per-team)', () => {
  it('holds a team’s next session while its GPU is in use, saying why; other teams go on; NSML’s message past the limit', async () => {
    const limited = await startTestServer({ gpus: 2, maxGpusPerTeam: 1 });
    const owner = new Participant(limited.url);
    try {
      await owner.login('admin', ADMIN_PASSWORD);
      const kim = await owner.addUser('kim', 'team-a');
      const lee = await owner.addUser('lee', 'team-b');
      cleanups.push(() => kim.cleanup(), () => lee.cleanup());
      const first = nameOf((await kim.khd(['run', '-g', '1', '-a', '60'], { cwd: root })).stdout);
      const held = await kim.khd(['run', '-g', '1', '-a', '0'], { cwd: root });
      expect(held.stdout).toMatch(/^Session kim\/None\/2 is queued: your team's GPU limit \(1\) is in use\n$/);
      // Another team takes the other GPU at once.
      expect((await lee.khd(['run', '-g', '1', '-a', '60'], { cwd: root })).stdout).toMatch(/is started\n$/);
      expect((await kim.khd(['ps'])).stdout).toContain("Queued: your team's GPU limit (1) is in use");
      const over = await kim.khd(['run', '-g', '2', '-a', '0'], { cwd: root });
      expect(over.stderr).toContain('Your maximum available GPU is 1');
      expect((await kim.khd(['stop', first])).code).toBe(EXIT.ok);
      await expect.poll(async () => (await kim.session(nameOf(held.stdout))).status).toBe('Exited');
    } finally {
      owner.cleanup();
      await limited.stop();
    }
  });
});

describe('an upload cut off midway', () => {
  it('leaves nothing extracted, and the upload cannot start a session', async () => {
    const token = admin.token();
    const files = { 'main.py': 'print(1)\n', 'big.bin': 'b'.repeat(2_000_000) };
    const { id } = await createUpload(server.url, token, files);
    await sendPartialUpload(server.url, token, id, files, 0.5);
    await untilReceivingAgain(server.services, id);
    // Nothing was laid out: not this upload's tree, and no half-written one.
    expect(existsSync(join(server.dataDir, 'trees', treeKey(manifestOf(files))))).toBe(false);
    expect(readdirSync(join(server.dataDir, 'trees')).filter((f) => f.startsWith('.partial-'))).toEqual([]);
    expect(readdirSync(join(server.dataDir, 'blobs', '.tmp'))).toEqual([]);

    const run = await fetch(`${server.url}/api/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ upload: id, dataset: null, entry: 'main.py', args: [], cpus: 2, memory: 1 << 30, shmSize: 0, memo: '' }),
    });
    expect(run.status).toBe(409);
    expect(((await run.json()) as { error: { message: string } }).error.message).toBe(
      `upload '${id}' is receiving, not ready: run khd run again`,
    );
  });

  it('refuses a declared body larger than the manifest allows before reading it', async () => {
    const token = admin.token();
    const create = await fetch(`${server.url}/api/v1/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ purpose: 'session', files: manifestOf({ 'main.py': 'x' }) }),
    });
    const { id } = (await create.json()) as { id: string };
    const put = await fetch(`${server.url}/api/v1/uploads/${id}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/gzip' },
      body: Buffer.alloc(50 * 1024 * 1024),
    });
    expect(put.status).toBe(413);
  });
});
