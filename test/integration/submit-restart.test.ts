import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { SubmitInfo } from '../../src/protocol/types.js';
import { project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer } from '../helpers/server.js';
import { submitDataset, SUBMIT_PROJECT_PY } from '../helpers/submit-project.js';

const dataDir = mkdtempSync(join(tmpdir(), 'khd-restart-'));
const data = submitDataset();
const code = project({ 'main.py': SUBMIT_PROJECT_PY });
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
  data.cleanup();
  code.cleanup();
});

describe('a server that dies during a submit', () => {
  it('records the submit as a platform failure that does not count, after the restart', async () => {
    const first = await startTestServer({ dataDir });
    const admin = new Participant(first.url);
    await admin.login('admin', ADMIN_PASSWORD);
    await admin.khd(['dataset', 'push', 'toy', data.root, '--leaderboard']);
    const run = await admin.khd(['run', '-d', 'toy', '-a', '--behaviour hang-before-pause', '-i'], { cwd: code.root });
    const session = /Session (\S+) is started/.exec(run.stdout)![1]!;
    const pending = admin.khd(['submit', session, 'best']);
    for (let i = 0; i < 100 && first.services.submitStore.evaluating().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await first.stop();
    await pending;

    // What a crash would leave: the submit evaluating and its session Running.
    const db = new Database(join(dataDir, 'khd.db'));
    db.prepare("UPDATE submits SET status = 'evaluating', stage = 'started', error = NULL").run();
    db.prepare("UPDATE sessions SET status = 'Running', reason = NULL WHERE type = 'submit'").run();
    db.close();

    const second = await startTestServer({ dataDir });
    const again = new Participant(second.url);
    await again.login('admin', ADMIN_PASSWORD);
    const [submit] = JSON.parse((await again.khd(['dataset', 'submits', 'toy', '--json'])).stdout) as SubmitInfo[];
    expect(submit).toMatchObject({ status: 'failed', error: 'PlatformError: the server restarted while the session was running' });
    expect(JSON.parse((await again.khd(['dataset', 'board', 'toy', '--json'])).stdout)).toEqual([]);
    await second.stop();
    admin.cleanup();
    again.cleanup();
  });
});
