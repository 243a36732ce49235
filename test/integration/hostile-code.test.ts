// Participant code that tries to get out of its session, read what it must not, or take the
// machine: each attempt is refused or the session is stopped, its status saying why, and the
// server goes on serving.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { SessionInfo } from '../../src/protocol/types.js';
import { datasetFolder } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

const AS_ROOT = process.getuid?.() === 0;
let server: TestServer;
let admin: Participant;
let kim: Participant;
let lee: Participant;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  server = await startTestServer({
    sessionLimits: { maxLogBytes: 1024 * 1024, maxDiskBytes: 16 * 1024 * 1024, maxFiles: 2000, diskCheckMs: 100 },
    maxProcesses: 48,
  });
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim', 'team-a');
  lee = await admin.addUser('lee', 'team-b');
  const data = datasetFolder();
  cleanups.push(data.cleanup);
  expect((await admin.khd(['dataset', 'push', 'hello', data.root])).code).toBe(EXIT.ok);
});

afterAll(async () => {
  for (const p of [admin, kim, lee]) p.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

/** Runs `code` as `who`'s main.py on hello with `-i`; returns the output and the session as `ps` shows it. */
async function runCode(code: string, flags: string[] = [], who = kim): Promise<{ stdout: string; stderr: string; session: SessionInfo }> {
  const r = await who.runCode(code, ['-d', 'hello', '-i', ...flags]);
  return { stdout: r.stdout, stderr: r.stderr, session: await who.session(r.name) };
}

/** Starts `code` as `who`'s main.py on hello; resolves with the session's name once its log has a line matching `ready`. */
async function startCode(code: string, ready: RegExp, who = kim): Promise<string> {
  const { name } = await who.runCode(code, ['-d', 'hello']);
  await expect.poll(async () => (await who.khd(['logs', name])).stdout).toMatch(ready);
  return name;
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
    // A server of its own: the others' sessions need more than 3 s on a loaded machine.
    const short = await startTestServer({ sessionLimits: { maxWallMs: 3000 } });
    const owner = new Participant(short.url);
    await owner.login('admin', ADMIN_PASSWORD);
    const data = datasetFolder();
    cleanups.push(data.cleanup);
    expect((await owner.khd(['dataset', 'push', 'hello', data.root])).code).toBe(EXIT.ok);
    try {
      const r = await runCode('while True:\n    pass\n', [], owner);
      expect(r.session).toMatchObject({ status: 'Failed', reason: 'time limit 3 s reached' });
    } finally {
      owner.cleanup();
      await short.stop();
    }
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


  it('that fills the disk through many checkpoint files is stopped at the disk limit, and what it wrote is removed', async () => {
    const fill = `
import os, time
folder = os.path.join(os.environ['KHD_CHECKPOINT_DIR'], 'huge')
os.makedirs(folder)
for i in range(64):
    with open(os.path.join(folder, str(i)), 'wb') as f:
        f.write(os.urandom(1024 * 1024))
time.sleep(60)
`;
    const r = await runCode(fill);
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'disk limit 16 MB reached' });
    expect(r.stderr).toContain('khd: disk limit 16 MB reached (work folder, checkpoints and events together): the session is stopped');
    expect(r.stderr).toContain('khd: to free the disk, its work folder was removed, and its checkpoints, which alone were over the limit');
    const models = await kim.khd(['model', 'ls', r.session.name, '--json']);
    expect(JSON.parse(models.stdout)).toEqual([]);
  });

  it('that fills the disk through its work folder is stopped at the disk limit; its checkpoints are kept', async () => {
    const fill = `
import os, time, nsml
nsml.bind(save=lambda d: open(os.path.join(d, 'w'), 'w').write('weights'))
nsml.save('best')
for i in range(40):
    with open('big%d' % i, 'wb') as f:
        f.write(bytes(1024 * 1024))
time.sleep(60)
`;
    const r = await runCode(fill);
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'disk limit 16 MB reached' });
    expect(r.stderr).toContain('khd: to free the disk, its work folder was removed; its checkpoints are kept');
    const models = JSON.parse((await kim.khd(['model', 'ls', r.session.name, '--json'])).stdout) as { checkpoint: string }[];
    expect(models.map((m) => m.checkpoint)).toEqual(['best']);
  });

  it('cannot write one file larger than the disk limit, anywhere: the kernel refuses it at the limit', async () => {
    // In /tmp (memory, not the server's disk), so no measurement of the disk can end it first.
    const code = `
try:
    with open('/tmp/one-big-file', 'wb') as f:
        for _ in range(40):
            f.write(bytes(1024 * 1024))
except OSError as e:
    print('refused:', e.strerror)
`;
    const r = await runCode(code);
    expect(lines(r.stdout)).toEqual(['refused: File too large']);
    expect(r.session).toMatchObject({ status: 'Exited', exitCode: 0 });
  });

  it('that makes files without end is stopped at the file limit', async () => {
    const code = 'import os, time\nos.makedirs("many")\nfor i in range(5000):\n    open("many/%d" % i, "w").close()\ntime.sleep(60)\n';
    const r = await runCode(code);
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'file limit 2,000 reached' });
  });

  it('that holds memory in children that left its process group (setsid) is ended, out of memory', async () => {
    const code = `
import os, time
for _ in range(4):
    if os.fork() == 0:
        os.setsid()
        data = bytearray(100 << 20)
        time.sleep(60)
        os._exit(0)
time.sleep(60)
`;
    const r = await runCode(code, ['--memory', '256M']);
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'out of memory (limit 256 MB)' });
  });

  it('that fills /dev/shm past its memory limit is ended, out of memory', async () => {
    // Files of 8 MB each: one file may not pass the disk limit (16 MB here), wherever it is.
    const code = 'import time\nfor i in range(48):\n    open("/dev/shm/fill%d" % i, "wb").write(b"x" * (8 << 20))\ntime.sleep(60)\n';
    const r = await runCode(code, ['--memory', '128M', '--shm-size', '1G']);
    expect(r.session).toMatchObject({ status: 'Failed', reason: 'out of memory (limit 128 MB)' });
  });

  it.runIf(AS_ROOT)("that forks without end runs out of processes; another team's session still forks, and the server goes on", async () => {
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
    print('refused after', n, flush=True)
time.sleep(60)
`;
    const name = await startCode(bomb, /refused after \d+/);
    const refused = Number(/refused after (\d+)/.exec((await kim.khd(['logs', name])).stdout)![1]);
    expect(refused).toBeLessThan(48);
    // Each session is its own uid: the other team's processes are not counted against it.
    const other = await runCode('import os\nfor _ in range(8):\n    if os.fork() == 0:\n        os._exit(0)\n    os.wait()\nprint("forked 8")\n', [], lee);
    expect(lines(other.stdout)).toEqual(['forked 8']);
    expect(other.session).toMatchObject({ status: 'Exited', exitCode: 0 });
    expect((await kim.khd(['stop', name])).code).toBe(EXIT.ok);
  });
});
