// `khd server backup` while the server works, and a server started from the copy: every session,
// log, checkpoint, submission and board as they were, with a session writing its log throughout
// and another that left a FIFO and a link where a copy would trip on them.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { BoardRow, CheckpointInfo, SessionInfo, SubmitInfo } from '../../src/protocol/types.js';
import { project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer } from '../helpers/server.js';
import { submitDataset, SUBMIT_PROJECT_PY } from '../helpers/submit-project.js';

const root = mkdtempSync(join(tmpdir(), 'khd-backup-'));
const cleanups: (() => void)[] = [];
afterAll(() => {
  cleanups.forEach((c) => c());
  rmSync(root, { recursive: true, force: true });
});

const PLANT_PY = `
import os, nsml
nsml.bind(save=lambda d: open(os.path.join(d, 'm.txt'), 'w').write('1'))
nsml.save('best')
folder = os.environ['KHD_CHECKPOINT_DIR']
os.mkfifo(os.path.join(folder, 'best', 'pipe'))
os.symlink('/etc/hostname', os.path.join(folder, 'best', 'link'))
print('planted')
`;

/** Everything a participant can see of the server, to compare before and after. */
async function state(who: Participant, ...apart: string[]) {
  const ps = (JSON.parse((await who.khd(['ps', '-a', '--json'])).stdout) as SessionInfo[]).filter((s) => !apart.includes(s.name));
  const logs: Record<string, string> = {};
  const models: Record<string, CheckpointInfo[]> = {};
  for (const s of ps) {
    if (s.type === 'submit') continue;
    logs[s.name] = (await who.khd(['logs', s.name])).stdout;
    models[s.name] = JSON.parse((await who.khd(['model', 'ls', s.name, '--json'])).stdout) as CheckpointInfo[];
  }
  const submits = JSON.parse((await who.khd(['dataset', 'submits', 'toy', '--json'])).stdout) as SubmitInfo[];
  const board = JSON.parse((await who.khd(['dataset', 'board', 'toy', '--json'])).stdout) as BoardRow[];
  return { ps, logs, models, submits, board };
}

describe('khd server backup', () => {
  it('copies a working server’s data dir, and a server started from the copy has everything as it was', async () => {
    const dataDir = join(root, 'data');
    const server = await startTestServer({ dataDir });
    const admin = new Participant(server.url);
    cleanups.push(() => admin.cleanup());
    await admin.login('admin', ADMIN_PASSWORD);
    const data = submitDataset();
    cleanups.push(data.cleanup);
    expect((await admin.khd(['dataset', 'push', 'toy', data.root, '--leaderboard', '--submit-interval', '1s'])).code).toBe(EXIT.ok);
    const code = project({ 'main.py': SUBMIT_PROJECT_PY });
    cleanups.push(code.cleanup);
    const trained = /Session (\S+) is started/.exec((await admin.khd(['run', '-d', 'toy', '-i'], { cwd: code.root })).stdout)![1]!;
    expect((await admin.khd(['submit', trained, 'best'])).stdout).toBe('Score: 0.75\n');
    expect((await admin.khd(['submit', '-t', trained, 'worse'])).code).toBe(EXIT.ok);
    const planted = await admin.runCode(PLANT_PY, ['-d', 'toy', '-i']);
    expect(planted.stdout).toContain('planted');
    // Load: a session writing its log all through the backup.
    const busy = await admin.runCode('import itertools, time\nfor i in itertools.count():\n    print("busy", i, flush=True)\n    time.sleep(0.001)\n');
    // Writing for real before the backup starts (on a loaded machine Python takes its time).
    await expect.poll(async () => (await admin.khd(['logs', busy.name])).stdout).toContain('busy 1\n');
    const before = await state(admin, busy.name, planted.name);

    const dest = join(root, 'copy');
    const backup = await admin.khd(['server', 'backup', dest, '--data-dir', dataDir]);
    expect(backup.code, backup.stderr).toBe(EXIT.ok);
    expect(backup.stderr).toContain(`note: checkpoints/admin/toy/${planted.name.split('/')[2]}/best/pipe left out`);
    expect(backup.stderr).toContain('/best/link left out');
    expect(backup.stderr).toMatch(/✓ Backed up .* to .*copy: \d+ sessions, 2 submits, 1 datasets, .*\n  restore: khd server --data-dir .*copy\n/);
    expect((await admin.khd(['rm', '-f', busy.name])).code).toBe(EXIT.ok);
    await server.stop();

    const restored = await startTestServer({ dataDir: dest });
    try {
      const again = new Participant(restored.url);
      cleanups.push(() => again.cleanup());
      await again.login('admin', ADMIN_PASSWORD);
      const after = await state(again, busy.name, planted.name);
      expect(after).toEqual(before);
      // What a session planted is left out of the copy; the rest of its checkpoint is there.
      const best = JSON.parse((await again.khd(['model', 'ls', planted.name, '--json'])).stdout) as CheckpointInfo[];
      expect(best.map((m) => [m.checkpoint, m.size])).toEqual([['best', 1]]);
      // The session that was running at the backup ended with the restart, and its log is whole up to there.
      const busyAfter = await again.session(busy.name);
      expect(busyAfter).toMatchObject({ status: 'Failed', reason: 'the server restarted while the session was running' });
      const lines = (await again.khd(['logs', busy.name])).stdout.trimEnd().split('\n');
      expect(lines.length).toBeGreaterThan(1);
      expect(lines.filter((l, i) => l !== `busy ${i}`)).toEqual([]);
      // It works on: a submit of a restored session's checkpoint, and a new run.
      const resubmit = await again.khd(['submit', '-t', trained, 'best']);
      expect(resubmit.stdout, resubmit.stderr).toMatch(/Score: 1\n$/);
      expect((await again.khd(['run', '-d', 'toy', '-i'], { cwd: code.root })).code).toBe(EXIT.ok);
    } finally {
      await restored.stop();
    }
  });

  it('refuses to copy into a folder that is not empty, or into the data dir itself', async () => {
    const dataDir = join(root, 'data');
    const admin = new Participant('http://127.0.0.1:9');
    cleanups.push(() => admin.cleanup());
    const full = await admin.khd(['server', 'backup', join(root, 'copy'), '--data-dir', dataDir]);
    expect(full.code).toBe(EXIT.failure);
    expect(full.stderr).toContain('is not empty: back up into a new folder');
    const inside = await admin.khd(['server', 'backup', join(dataDir, 'b'), '--data-dir', dataDir]);
    expect(inside.stderr).toContain('the backup cannot go inside the data dir it copies');
    expect(existsSync(join(dataDir, 'b'))).toBe(false);
    const none = await admin.khd(['server', 'backup', join(root, 'x'), '--data-dir', join(root, 'nothing')]);
    expect(none.stderr).toContain('holds no khd data dir (no khd.db)');
  });
});
