// Every state a stop can leave behind has an owner: uploads caught reading a body, temporary
// contents, trees half laid out, a tree that went missing. Each is recovered at the next start
// (or by the periodic sweep) and nothing stays pinned.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import { craftTar, gz } from '../helpers/craft-tar.js';
import { createUpload } from '../helpers/raw-upload.js';
import { ADMIN_PASSWORD, Participant, startTestServer } from '../helpers/server.js';
import { makeTree } from '../helpers/tree.js';

const dataDir = mkdtempSync(join(tmpdir(), 'khd-recovery-'));
const cleanups: (() => void)[] = [];
afterAll(() => {
  cleanups.forEach((c) => c());
  rmSync(dataDir, { recursive: true, force: true });
});

const FILES = { 'main.py': 'print("recovered")\n', 'data.txt': 'x'.repeat(5000) };

async function put(url: string, token: string, id: string, files: Record<string, string>) {
  const body = gz(craftTar(Object.entries(files).map(([path, b]) => ({ path, body: b }))));
  const res = await fetch(`${url}/api/v1/uploads/${id}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/gzip' }, body });
  return { status: res.status, body: (await res.json()) as { state?: string } };
}

describe('a server that stopped mid-way', () => {
  it('at start: uploads caught extracting take their body again, temporary contents and half trees go, a missing tree is laid out again', async () => {
    const first = await startTestServer({ dataDir });
    const admin = new Participant(first.url);
    await admin.login('admin', ADMIN_PASSWORD);
    const token = admin.token();
    const stuck = await createUpload(first.url, token, FILES);
    // A session whose tree will go missing: run once, so its upload has a tree.
    const project = makeTree({ 'main.py': 'print("laid out again")\n' }, 'khd-recovery-project-');
    const ran = await admin.khd(['run', '-i'], { cwd: project.root });
    expect(ran.code, ran.stderr).toBe(EXIT.ok);
    await first.stop();

    // What a kill leaves: an upload `extracting`, a temporary content, a tree half laid out, and
    // (a disk clean-up gone wrong) a tree gone from under its upload.
    const db = new Database(join(dataDir, 'khd.db'));
    db.prepare("UPDATE uploads SET state = 'extracting' WHERE id = ?").run(stuck.id);
    const { tree } = db.prepare('SELECT tree FROM uploads WHERE tree IS NOT NULL').get() as { tree: string };
    db.close();
    writeFileSync(join(dataDir, 'blobs', '.tmp', 'orphan'), 'half a content');
    mkdirSync(join(dataDir, 'trees', '.partial-dead'));
    writeFileSync(join(dataDir, 'trees', '.partial-dead', 'x'), 'x');
    rmSync(join(dataDir, 'trees', tree), { recursive: true });

    const second = await startTestServer({ dataDir });
    try {
      expect(readdirSync(join(dataDir, 'blobs', '.tmp'))).toEqual([]);
      expect(existsSync(join(dataDir, 'trees', '.partial-dead'))).toBe(false);
      expect(existsSync(join(dataDir, 'trees', tree, 'main.py'))).toBe(true);
      // The stuck upload takes its body and becomes ready.
      const again = await put(second.url, token, stuck.id, FILES);
      expect(again).toEqual({ status: 200, body: { id: stuck.id, state: 'ready', send: [] } });
      // The project whose tree was laid out again runs from it.
      const back = new Participant(second.url);
      cleanups.push(() => back.cleanup());
      await back.login('admin', ADMIN_PASSWORD);
      const rerun = await back.khd(['run', '-i'], { cwd: project.root });
      expect(rerun.code, rerun.stderr).toBe(EXIT.ok);
      expect(rerun.stdout).toContain('laid out again');
    } finally {
      await second.stop();
      admin.cleanup();
      project.cleanup();
    }
  });

  it('while running: the sweep takes an upload left extracting by a read no longer under way', async () => {
    const server = await startTestServer();
    try {
      const admin = new Participant(server.url);
      await admin.login('admin', ADMIN_PASSWORD);
      const upload = await createUpload(server.url, admin.token(), { 'main.py': 'print(1)\n' });
      server.services.db.prepare("UPDATE uploads SET state = 'extracting' WHERE id = ?").run(upload.id);
      expect((await server.services.sweep(Date.now() + 60_000)).uploads).toBe(1);
      expect(server.services.db.prepare('SELECT 1 FROM uploads WHERE id = ?').get(upload.id)).toBeUndefined();
      admin.cleanup();
    } finally {
      await server.stop();
    }
  });
});
