import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import { treeKey } from '../../src/protocol/tree-key.js';
import { manifestOf } from '../helpers/craft-tar.js';
import { createUpload, sendPartialUpload, untilReceivingAgain, untilStored } from '../helpers/raw-upload.js';
import { project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

const SHOW_PY = "import os\nfor n in sorted(os.listdir('.')):\n    print(n, os.path.getsize(n))\n";

let server: TestServer;
let admin: Participant;
let kim: Participant;
let lee: Participant;
const cleanups: (() => void)[] = [];

function newProject(files: Record<string, string | Buffer>) {
  const p = project(files as Record<string, string>);
  cleanups.push(p.cleanup);
  return p.root;
}

const planOf = (stderr: string) => stderr.split('\n').find((l) => / files?, .*: /.test(l));
/** The CLI's clock an hour ahead: files written by the test just now are not racily clean, so their hashes are cached. */
const later = () => Date.now() + 3_600_000;

beforeAll(async () => {
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim');
  lee = await admin.addUser('lee');
});

afterAll(async () => {
  for (const p of [admin, kim, lee]) p.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

describe('uploads that send only what changed', () => {
  it('sends everything once, then nothing for an unchanged tree, then only the changed file', async () => {
    const root = newProject({ 'main.py': SHOW_PY, 'big.bin': randomBytes(200_000).toString('hex'), 'notes.txt': 'n' });
    const first = await kim.khd(['run', '-i'], { cwd: root });
    expect(planOf(first.stderr)).toBe('3 files, 390.7 KB: all to send');
    const again = await kim.khd(['run', '-i'], { cwd: root });
    expect(planOf(again.stderr)).toBe('3 files, 390.7 KB: all already on the server, nothing to send');
    expect(again.stderr).not.toMatch(/ B - (start|done)/);
    expect(again.stdout).toContain('big.bin 400000\nmain.py 77\nnotes.txt 1\n');
    writeFileSync(join(root, 'notes.txt'), 'changed');
    const changed = await kim.khd(['run', '-i'], { cwd: root });
    expect(planOf(changed.stderr)).toBe('3 files, 390.7 KB: 1 file (7 B) to send, the rest already on the server');
    expect(changed.stderr).toContain('notes.txt 7 B - done (1/1 100.00%)');
    expect(changed.stdout).toContain('notes.txt 7\n');
  });

  it('makes another user send a content again: knowing a hash gives no access to a file', async () => {
    const content = randomBytes(1000).toString('hex');
    await kim.khd(['run'], { cwd: newProject({ 'main.py': 'pass', 'secret.txt': content }) });
    const theirs = await lee.khd(['run'], { cwd: newProject({ 'main.py': 'pass', 'secret.txt': content }) });
    expect(planOf(theirs.stderr)).toBe('2 files, 2 KB: all to send');
    const token = lee.token();
    const [entry] = manifestOf({ 'secret.txt': content });
    const create = await fetch(`${server.url}/api/v1/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ purpose: 'session', files: [{ ...entry, path: 'copy.txt' }] }),
    });
    // lee sent it too, so lee may now reuse it; admin never did and must send it.
    expect(((await create.json()) as { send: string[] }).send).toEqual([]);
    const asAdmin = await fetch(`${server.url}/api/v1/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ purpose: 'session', files: [entry] }),
    });
    expect(((await asAdmin.json()) as { send: string[] }).send).toEqual(['secret.txt']);
  });

  it('names an unchanged tree by its key alone, only to the user who sent it; a tree gone from disk is sent again', async () => {
    const files = { 'main.py': SHOW_PY, 'private.txt': randomBytes(500).toString('hex') };
    const root = newProject(files);
    const requests: string[] = [];
    const listen = (req: IncomingMessage) => requests.push(`${req.method} ${req.url?.replace(/[0-9a-f-]{36}/, 'ID')}`);
    server.app.server.on('request', listen);
    const park = await admin.addUser('park');
    cleanups.push(() => park.cleanup());
    try {
      // A first upload: nothing is hashed first (park has no content on the server), so there is no key to name.
      await park.khd(['run'], { cwd: root, clock: later });
      expect(requests.filter((r) => r.includes('/uploads'))).toEqual(['POST /api/v1/uploads', 'PUT /api/v1/uploads/ID']);
      requests.length = 0;
      // The hashes made as it was sent (and agreed by the server) fill the cache: the tree is named next time.
      const again = await park.khd(['run', '-i'], { cwd: root, clock: later });
      expect(planOf(again.stderr)).toMatch(/all already on the server, nothing to send/);
      expect(again.stdout).toContain('private.txt 1000');
      expect(requests.filter((r) => r.includes('/uploads'))).toEqual(['POST /api/v1/uploads/reuse']);
    } finally {
      server.app.server.off('request', listen);
    }
    const key = treeKey(manifestOf(files));
    // Someone else who knows (or computes) the key gets nothing from it, an admin included.
    for (const who of [lee, admin, kim]) {
      const res = await fetch(`${server.url}/api/v1/uploads/reuse`, {
        method: 'POST',
        headers: { authorization: `Bearer ${who.token()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ purpose: 'session', tree: key }),
      });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('KHD_UPLOAD_NOT_FOUND');
    }
    const bad = await fetch(`${server.url}/api/v1/uploads/reuse`, {
      method: 'POST',
      headers: { authorization: `Bearer ${park.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ purpose: 'session', tree: '../../etc' }),
    });
    expect(bad.status).toBe(400);
    // The laid-out tree is gone (a disk cleaned by hand): the manifest goes, and the tree is laid out again.
    rmSync(join(server.dataDir, 'trees', key), { recursive: true, force: true });
    const after = await park.khd(['run', '-i'], { cwd: root });
    expect(planOf(after.stderr)).toMatch(/all already on the server, nothing to send/);
    expect(after.stdout).toContain('private.txt 1000');
    expect(existsSync(join(server.dataDir, 'trees', key))).toBe(true);
  });

  it('after an upload cut off midway, the next run sends only what did not arrive', async () => {
    const files = { 'main.py': SHOW_PY, 'a.txt': 'a'.repeat(1000), 'b.bin': randomBytes(300_000).toString('base64') };
    const root = newProject(files);
    const token = kim.token();
    const { id } = await createUpload(server.url, token, files);
    await sendPartialUpload(server.url, token, id, files, 0.6);
    await untilReceivingAgain(server.services, id);
    const resumed = await kim.khd(['run', '-i'], { cwd: root });
    expect(planOf(resumed.stderr)).toMatch(/^3 files, .*: 1 file \(\d+\.\d KB\) to send, the rest already on the server$/);
    expect(resumed.stderr).toContain('b.bin');
    expect(resumed.stdout).toContain('a.txt 1000\n');
  });

  it('retries a transient failure with back-off and finishes the job', async () => {
    const root = newProject({ 'main.py': SHOW_PY, 'large.bin': randomBytes(24 * 1024 * 1024) });
    // Cut at the event that proves the upload is under way, the first PUT of its contents arriving:
    // not on a timer, which races the CLI's hashing of the 24 MB.
    let cuts = 0;
    const cutter = (req: IncomingMessage) => {
      if (cuts === 0 && req.method === 'PUT' && req.url?.startsWith('/api/v1/uploads/')) {
        cuts += 1;
        req.socket.destroy();
      }
    };
    server.app.server.prependListener('request', cutter);
    const r = await kim.khd(['run', '-i'], { cwd: root }).finally(() => server.app.server.off('request', cutter));
    expect(cuts).toBe(1);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stderr).toMatch(/upload interrupted \(.*\); retrying in \d\.\d s \(attempt 1\)/);
    expect(r.stdout).toContain('large.bin 25165824\n');
  });

  it('sends a link to a file inside the project as that file', async () => {
    const root = newProject({ 'main.py': SHOW_PY, 'lib/real.txt': 'hello' });
    symlinkSync('lib/real.txt', join(root, 'alias.txt'));
    symlinkSync('/etc/hostname', join(root, 'outside'));
    const dry = await kim.khd(['run', '--dry-run'], { cwd: root });
    expect(dry.stdout).toContain('  alias.txt  5 B  (link to lib/real.txt)\n');
    expect(dry.stdout).toContain('  outside  (symbolic link pointing outside the project (not followed))\n');
    const r = await kim.khd(['run', '-i'], { cwd: root });
    expect(r.stdout).toContain('alias.txt 5\n');
  });

  it('refuses paths that differ only by case, on both sides', async () => {
    const root = newProject({ 'main.py': 'pass', 'Model.py': 'a', 'model.py': 'b' });
    expect((await kim.khd(['run'], { cwd: root })).stderr).toBe(
      "error: 'Model.py' and 'model.py' differ only by case or Unicode normalisation: rename one (they would collide)\n",
    );
    const twins = [...manifestOf({ 'caf\u00e9.py': 'x' }), ...manifestOf({ 'cafe\u0301.py': 'y' })];
    const res = await fetch(`${server.url}/api/v1/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${kim.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ purpose: 'session', files: twins }),
    });
    expect(res.status).toBe(422);
  });

  it('takes the manifest gzipped, and refuses a body that is not gzip with a 400', async () => {
    const res = await fetch(`${server.url}/api/v1/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${kim.token()}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: '{"purpose":"session","files":[]}',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'KHD_BAD_REQUEST',
      message: expect.stringContaining('the manifest is not valid gzip'),
    });
  });

  it('--json prints the plan, each file and the session as JSON lines', async () => {
    const root = newProject({ 'main.py': 'print("json")' });
    const r = await kim.khd(['run', '--json'], { cwd: root });
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    expect(events.map((e) => e.event)).toEqual(['plan', 'file', 'uploaded', 'session']);
    expect(events[3]).toMatchObject({ event: 'session', status: 'Running' });
  });
});

describe('a server restarted in the middle of an upload', () => {
  it('keeps what arrived, and the next run finishes the job', async () => {
    const own = await startTestServer();
    const p = new Participant(own.url);
    await p.login('admin', ADMIN_PASSWORD);
    const files = { 'main.py': SHOW_PY, 'first.txt': 'f'.repeat(500), 'rest.bin': randomBytes(400_000).toString('base64') };
    const root = newProject(files);
    const { id } = await createUpload(own.url, p.token(), files);
    const put = sendPartialUpload(own.url, p.token(), id, files, 0.5, true);
    // What the half sent holds whole (the tar sends files in manifest order) is on disk.
    await untilStored(own.dataDir, [files['main.py'], files['first.txt']]);
    const port = new URL(own.url).port;
    own.app.server.closeAllConnections();
    await own.close();
    await put;
    const again = await startTestServer({ dataDir: own.dataDir, port: Number(port) });
    const r = await p.khd(['run', '-i'], { cwd: root });
    expect(planOf(r.stderr)).toMatch(/^3 files, .*: 1 file \(.*\) to send, the rest already on the server$/);
    expect(r.stdout).toContain('first.txt 500\n');
    await again.stop();
    p.cleanup();
  });
});

describe('limits the participant can see', () => {
  it('refuses before sending, naming the largest files and folders and suggesting .nsmlignore lines', async () => {
    const small = await startTestServer({
      limits: { session: { maxFiles: 3, maxTotalBytes: 1024 ** 3, maxFileBytes: 1024 ** 2, maxDepth: 8, maxPathLength: 200 } },
    });
    const p = new Participant(small.url);
    await p.login('admin', ADMIN_PASSWORD);
    expect((await p.khd(['run', '--show-limits'])).stdout).toContain('files per upload   3\n');
    const root = newProject({ 'main.py': 'pass', 'data/a.npy': 'a'.repeat(5000), 'data/b.npy': 'b'.repeat(4000), 'data/c.npy': 'c' });
    const uploads = () => (small.services.db.prepare('SELECT COUNT(*) AS n FROM uploads').get() as { n: number }).n;
    const r = await p.khd(['run'], { cwd: root });
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toContain("error: the project is over the server's upload limits: 4 files (the server takes 3).");
    expect(r.stderr).toContain('Largest folders:\n  data/  3 files, 0.0 MB');
    expect(r.stderr).toContain('Leave out what the session does not need, e.g. in .nsmlignore:\n  data/\n');
    expect(uploads()).toBe(0);
    await small.stop();
    p.cleanup();
  });
});

describe('contents no upload names any more', () => {
  it('are collected after their session is removed; a later run sends them again and runs', async () => {
    const own = await startTestServer();
    const p = new Participant(own.url);
    await p.login('admin', ADMIN_PASSWORD);
    const kept = newProject({ 'main.py': SHOW_PY, 'kept.txt': 'kept by a session that stays' });
    const gone = newProject({ 'main.py': SHOW_PY, 'gone.txt': 'its session is removed' });
    const name = async (root: string) => /Session (\S+) is started/.exec((await p.khd(['run', '-i'], { cwd: root })).stdout)![1]!;
    await name(kept);
    const removed = await name(gone);
    expect((await p.khd(['rm', removed])).code).toBe(EXIT.ok);

    // As the periodic sweep does, with everything old enough.
    expect(await own.services.sweep(Date.now() + 60_000)).toEqual({ uploads: 0, contents: 1 });

    const keptAgain = await p.khd(['run', '-i'], { cwd: kept });
    expect(planOf(keptAgain.stderr)).toBe('2 files, 105 B: all already on the server, nothing to send');
    const goneAgain = await p.khd(['run', '-i'], { cwd: gone });
    expect(planOf(goneAgain.stderr)).toBe('2 files, 99 B: 1 file (22 B) to send, the rest already on the server');
    expect(goneAgain.code).toBe(EXIT.ok);
    expect(goneAgain.stdout).toContain('gone.txt 22\nmain.py 77\n');
    await own.stop();
    p.cleanup();
  });
});
