// Participant code that tries to get out of its session, read what it must not, or take the
// machine: each attempt is refused or the session is stopped, its status saying why, and the
// server goes on serving.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { SessionInfo } from '../../src/protocol/types.js';
import { datasetFolder, project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

const AS_ROOT = process.getuid?.() === 0;
let server: TestServer;
let admin: Participant;
let kim: Participant;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  server = await startTestServer({
    sessionLimits: { maxWallMs: 3000, maxLogBytes: 1024 * 1024, maxDiskBytes: 16 * 1024 * 1024, diskCheckMs: 100 },
    maxProcesses: 48,
  });
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim');
  const data = datasetFolder();
  cleanups.push(data.cleanup);
  expect((await admin.khd(['dataset', 'push', 'hello', data.root])).code).toBe(EXIT.ok);
});

afterAll(async () => {
  for (const p of [admin, kim]) p.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

/** Runs `code` as kim's main.py with `-i`; returns the output and the session as `ps` shows it. */
async function runCode(code: string, flags: string[] = []): Promise<{ stdout: string; stderr: string; session: SessionInfo }> {
  const p = project({ 'main.py': code });
  cleanups.push(p.cleanup);
  const r = await kim.khd(['run', '-d', 'hello', '-i', ...flags], { cwd: p.root });
  const name = /Session (\S+) is started/.exec(r.stdout + r.stderr)?.[1];
  expect(name, r.stderr).toBeDefined();
  const ps = await kim.khd(['ps', '-a', '--json']);
  const session = (JSON.parse(ps.stdout) as SessionInfo[]).find((s) => s.name === name)!;
  return { stdout: r.stdout, stderr: r.stderr, session };
}

const lines = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('Session '));

describe('participant code', () => {
  it('cannot reach the server, its data dir, another session, the hidden test set or the labels', async () => {
    const first = await runCode('print("first")');
    const otherWork = join(server.dataDir, 'sessions');
    const someSession = readdirSync(otherWork)[0]!;
    const probe = `
import os, socket
from pathlib import Path
import nsml
s = socket.socket(); s.settimeout(2)
try:
    s.connect(('127.0.0.1', ${new URL(server.url).port})); print('server reachable')
except OSError:
    print('server unreachable')
for name, path in [('data dir', ${JSON.stringify(server.dataDir)}), ('other session', ${JSON.stringify(join(otherWork, someSession))})]:
    print(name, 'visible' if os.path.exists(path) else 'absent')
print('dataset parts', sorted(os.listdir(nsml.DATASET_PATH)))
# Everywhere but the system's read-only folders (/usr, /proc: too big for the time limit here).
tops = [p for p in Path('/').iterdir() if p.name not in ('usr', 'proc', 'sys', 'dev')]
hidden = [str(f) for top in tops for f in ([top] if top.name == 'test_label' else top.rglob('test_label'))]
hidden += [str(f) for top in tops if top.is_dir() for f in top.rglob('test') if f.is_dir() and 'hello' in str(f)]
print('labels found', hidden)
try:
    open(os.path.join(nsml.DATASET_PATH, 'train', 'x'), 'w'); print('dataset writable')
except OSError:
    print('dataset read-only')
`;
    const r = await runCode(probe);
    expect(first.session.status).toBe('Exited');
    expect(lines(r.stdout)).toEqual([
      'server unreachable',
      'data dir absent',
      'other session absent',
      "dataset parts ['train']",
      'labels found []',
      'dataset read-only',
    ]);
    expect(r.session).toMatchObject({ status: 'Exited', exitCode: 0 });
  });

  it('that allocates past its memory limit is ended as Failed, out of memory', async () => {
    const r = await runCode('chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n', ['--memory', '128M']);
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'out of memory (limit 128 MB)' });
  });

  it('that loops forever is stopped at the time limit', async () => {
    const r = await runCode('while True:\n    pass\n');
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'time limit 3 s reached' });
  });

  it('that prints without end is stopped at the log limit, and its log stays bounded', async () => {
    const r = await runCode('import sys\nline = "x" * 1000\nwhile True:\n    print(line)\n');
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'log limit 1 MB reached' });
    const logs = readdirSync(join(server.dataDir, 'logs')).map((f) => statSync(join(server.dataDir, 'logs', f)).size);
    expect(Math.max(...logs)).toBeLessThan(4 * 1024 * 1024);
    expect(r.stderr).toContain('khd: log limit 1 MB reached: the session is stopped and further output dropped');
  });

  it('that writes without end and without a line end is stopped at the log limit too', async () => {
    const r = await runCode('import sys\nwhile True:\n    sys.stdout.write("x" * 100000)\n');
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'log limit 1 MB reached' });
  });

  it('that fills the disk through its checkpoints is stopped at the disk limit', async () => {
    const fill = `
import os, time
folder = os.path.join(os.environ['KHD_CHECKPOINT_DIR'], 'huge')
os.makedirs(folder)
with open(os.path.join(folder, 'w'), 'wb') as f:
    for _ in range(64):
        f.write(os.urandom(1024 * 1024))
        f.flush()
time.sleep(60)
`;
    const r = await runCode(fill);
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'disk limit 16 MB reached' });
    expect(r.stderr).toContain('khd: disk limit 16 MB reached (work folder, checkpoints and events together): the session is stopped');
  });

  it('that fills the disk through its work folder is stopped at the disk limit', async () => {
    const r = await runCode('import time\nwith open("big", "wb") as f:\n    f.write(bytes(40 * 1024 * 1024))\ntime.sleep(60)\n');
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'disk limit 16 MB reached' });
  });

  it.runIf(AS_ROOT)('that forks without end runs out of processes, and the server goes on', async () => {
    const bomb = `
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError:
    print('refused after', n)
`;
    const r = await runCode(bomb);
    expect(r.stdout).toMatch(/refused after \d+/);
    expect(Number(/refused after (\d+)/.exec(r.stdout)![1])).toBeLessThan(48);
    expect(r.session).toMatchObject({ status: 'Exited', exitCode: 0 });
    const after = await runCode('print("still fine")');
    expect(lines(after.stdout)).toEqual(['still fine']);
  });
});
