import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import { craftTar } from '../helpers/craft-tar.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { makeTree } from '../helpers/tree.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

const SHOW_PY = "import os\nfor n in sorted(os.listdir('.')):\n    print(n, os.path.getsize(n))\n";
const sha = (body: string | Buffer) => createHash('sha256').update(body).digest('hex');
const planOf = (stderr: string) => stderr.split('\n').find((l) => / files?, .*: /.test(l));
/** The CLI's clock an hour ahead: files written by the test just now are not racily clean, so their hashes are cached. */
const later = () => Date.now() + 3_600_000;

let server: TestServer;
let admin: Participant;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
});

afterAll(async () => {
  admin.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

async function newUser(name: string): Promise<Participant> {
  const p = await admin.addUser(name);
  cleanups.push(() => p.cleanup());
  return p;
}

function newProject(files: Record<string, string | Buffer>): string {
  const p = makeTree(files, 'khd-project-');
  cleanups.push(p.cleanup);
  return p.root;
}

/** The requests to /uploads while `work` runs, as `METHOD /path`. */
async function uploadRequests(work: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listen = (req: IncomingMessage) => {
    if (req.url?.includes('/uploads')) seen.push(`${req.method} ${req.url.replace(/[0-9a-f-]{36}/, 'ID')}`);
  };
  server.app.server.on('request', listen);
  try {
    await work();
  } finally {
    server.app.server.off('request', listen);
  }
  return seen;
}

function api(token: string, method: string, path: string, body?: unknown, type = 'application/json') {
  return fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': type },
    body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
}

describe('a first upload in one pass', () => {
  it('sends the files unhashed, the server hashes them; the next run is named by its key, a fresh clone is hashed first and sends nothing', async () => {
    const choi = await newUser('choi');
    const files = { 'main.py': SHOW_PY, 'weights.bin': randomBytes(300_000).toString('base64'), 'a.txt': 'same', 'b.txt': 'same' };
    const root = newProject(files);
    let first: Awaited<ReturnType<Participant['khd']>> | undefined;
    expect(await uploadRequests(async () => (first = await choi.khd(['run', '-i'], { cwd: root, clock: later })))).toEqual(['POST /api/v1/uploads', 'PUT /api/v1/uploads/ID']);
    expect(first!.code, first!.stderr).toBe(EXIT.ok);
    expect(planOf(first!.stderr)).toBe('4 files, 390.7 KB: all to send');
    expect(first!.stdout).toContain('a.txt 4\nb.txt 4\nmain.py 77\nweights.bin 400000\n');
    // The server's manifest of the upload holds the hash of what arrived, for every file.
    const row = server.services.db.prepare("SELECT manifest FROM uploads u JOIN users s ON s.id = u.user_id WHERE s.name = 'choi'").get() as { manifest: string };
    expect(Object.fromEntries((JSON.parse(row.manifest) as { path: string; sha256: string }[]).map((f) => [f.path, f.sha256]))).toEqual(
      Object.fromEntries(Object.entries(files).map(([path, body]) => [path, sha(body)])),
    );

    // The same folder again: the hashes made as it was sent are in the cache.
    expect(await uploadRequests(() => choi.khd(['run'], { cwd: root, clock: later }))).toEqual(['POST /api/v1/uploads/reuse']);

    // A fresh clone (a cold cache): every size is one of choi's contents, so all are hashed first, and the tree is named.
    const clone = mkdtempSync(join(tmpdir(), 'khd-clone-'));
    cleanups.push(() => rmSync(clone, { recursive: true, force: true }));
    cpSync(root, clone, { recursive: true });
    let cloned: Awaited<ReturnType<Participant['khd']>> | undefined;
    expect(await uploadRequests(async () => (cloned = await choi.khd(['run', '-i'], { cwd: clone })))).toEqual([
      'POST /api/v1/uploads',
      'POST /api/v1/uploads/reuse',
    ]);
    expect(planOf(cloned!.stderr)).toBe('4 files, 390.7 KB: all already on the server, nothing to send');

    // A new project: the files whose size choi has are hashed first (main.py is found; four.txt,
    // new bytes of a known size, is sent by its hash); the other goes unhashed.
    const next = newProject({ 'main.py': SHOW_PY, 'new.txt': 'a file of a size choi never sent', 'four.txt': 'diff' });
    let sent: Awaited<ReturnType<Participant['khd']>> | undefined;
    expect(await uploadRequests(async () => (sent = await choi.khd(['run', '-i'], { cwd: next })))).toEqual([
      'POST /api/v1/uploads',
      'POST /api/v1/uploads',
      'PUT /api/v1/uploads/ID',
    ]);
    expect(planOf(sent!.stderr)).toBe('3 files, 113 B: 2 files (36 B) to send, the rest already on the server');
    expect(sent!.stdout).toContain('four.txt 4\nmain.py 77\nnew.txt 32\n');
  });

  it('answers with the files to hash first when a size is one of the user’s, and makes no upload', async () => {
    const han = await newUser('han');
    const token = han.token();
    const known = 'x'.repeat(40);
    // han sends a 40-byte content, unhashed: it is stored as han's, with the hash the server computed.
    const created = (await (await api(token, 'POST', '/uploads', { purpose: 'session', files: [{ path: 'main.py', size: 40, mode: 0o644 }] })).json()) as { id: string; send: string[] };
    expect(created.send).toEqual(['main.py']);
    const put = await api(token, 'PUT', `/uploads/${created.id}`, craftTar([{ path: 'main.py', body: known }]), 'application/x-tar');
    expect(put.status).toBe(200);
    expect(((await put.json()) as { hashes: string[] }).hashes).toEqual([sha(known)]);

    const uploads = () => server.services.db.prepare('SELECT COUNT(*) FROM uploads').pluck().get() as number;
    const before = uploads();
    const ask = await api(token, 'POST', '/uploads', {
      purpose: 'session',
      files: [
        { path: 'main.py', size: 5, mode: 0o644, sha256: sha('pass\n') },
        { path: 'same-size.txt', size: 40, mode: 0o644 },
        { path: 'other.txt', size: 41, mode: 0o644 },
      ],
    });
    expect(ask.status).toBe(200);
    expect(await ask.json()).toEqual({ hashFirst: ['same-size.txt'] });
    expect(uploads()).toBe(before);

    // Another user's sizes say nothing to this one: everything unhashed is sent.
    const other = await newUser('hong');
    const theirs = await api(other.token(), 'POST', '/uploads', { purpose: 'session', files: [{ path: 'same-size.txt', size: 40, mode: 0o644 }] });
    expect(theirs.status).toBe(201);
    expect(((await theirs.json()) as { send: string[] }).send).toEqual(['same-size.txt']);
  });

  it('needs every unhashed file in the body, keeps the hashes of those that came, and refuses a size that lies', async () => {
    const token = (await newUser('jang')).token();
    const files = [
      { path: 'main.py', size: 10, mode: 0o644 },
      { path: 'lib/util.py', size: 11, mode: 0o644 },
    ];
    const { id } = (await (await api(token, 'POST', '/uploads', { purpose: 'session', files })).json()) as { id: string };
    const half = await api(token, 'PUT', `/uploads/${id}`, craftTar([{ path: 'main.py', body: 'print(1)\n\n' }]), 'application/x-tar');
    expect(half.status).toBe(422);
    expect(((await half.json()) as { error: { message: string } }).error.message).toContain('1 file(s) never arrived (lib/util.py)');
    // What arrived whole is kept with its hash, and named by the upload (so not collected under it).
    expect(JSON.parse(server.services.db.prepare('SELECT arrived FROM uploads WHERE id = ?').pluck().get(id) as string)).toEqual({ 'main.py': sha('print(1)\n\n') });
    expect(server.services.db.prepare('SELECT sha256 FROM upload_contents WHERE upload_id = ?').pluck().all(id)).toEqual([sha('print(1)\n\n')]);

    const liar = await api(token, 'PUT', `/uploads/${id}`, craftTar([{ path: 'lib/util.py', body: 'too long for 11 bytes' }]), 'application/x-tar');
    expect(liar.status).toBe(422);
    expect(((await liar.json()) as { error: { message: string } }).error.message).toContain("entry 'lib/util.py' is 21 bytes, the manifest says 11");

    const rest = await api(token, 'PUT', `/uploads/${id}`, craftTar([{ path: 'lib/util.py', body: 'X = 12345\n\n' }]), 'application/x-tar');
    expect(rest.status).toBe(200);
    expect(await rest.json()).toMatchObject({ state: 'ready', hashes: [sha('print(1)\n\n'), sha('X = 12345\n\n')] });
    const key = server.services.db.prepare('SELECT tree FROM uploads WHERE id = ?').pluck().get(id) as string;
    expect(readFileSync(join(server.dataDir, 'trees', key, 'lib/util.py'), 'utf8')).toBe('X = 12345\n\n');

    const bad = await api(token, 'POST', '/uploads', { purpose: 'session', files: [{ path: 'a.py', size: 1, mode: 0o644, sha256: 'not-a-hash'.padEnd(64, 'z') }] });
    expect(bad.status).toBe(422);
  });

  it('stops a run whose file arrived different from what was read, and starts no session', async () => {
    const kang = await newUser('kang');
    // Random bytes: the tar goes uncompressed, so one byte flipped on the way reaches a file.
    const root = newProject({ 'main.py': 'print(1)\n', 'weights.bin': randomBytes(200_000) });
    const proxy = await startFaultProxy(server.url, () => 'pass', (req, chunk, at) => (req.method === 'PUT' && at <= 100_000 && at + chunk.length > 100_000 ? flip(chunk, 100_000 - at) : chunk));
    const viaProxy = new Participant(proxy.url);
    cleanups.push(() => viaProxy.cleanup());
    try {
      await viaProxy.login('kang', 'kang-password');
      const r = await viaProxy.khd(['run'], { cwd: root });
      expect(r.code).toBe(EXIT.failure);
      expect(r.stderr).toMatch(/weights\.bin arrived different on the server \(sha256 [0-9a-f]{12}…, sent [0-9a-f]{12}…\): the connection changed it; run again/);
      expect((await kang.khd(['ps', '-a', '--json'])).stdout.trim()).toBe('[]');
    } finally {
      await proxy.close();
    }
  });
});

function flip(chunk: Buffer, at: number): Buffer {
  const copy = Buffer.from(chunk);
  copy[at] = copy[at]! ^ 0xff;
  return copy;
}
