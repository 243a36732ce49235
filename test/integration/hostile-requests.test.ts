// Requests no honest client sends, against the real server on loopback: bodies that lie about
// their size, paths that climb out of their route, another team's token, expired and revoked
// tokens. Each is refused, and what was there before is untouched.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import { newToken } from '../../src/server/auth/tokens.js';
import { craftTar, gz } from '../helpers/craft-tar.js';
import { project } from '../helpers/projects.js';
import { createUpload, untilReceivingAgain } from '../helpers/raw-upload.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let admin: Participant;
let kim: Participant;
let lee: Participant;
let kimToken: string;
let leeToken: string;
let kimSession: string;
const cleanups: (() => void)[] = [];

/** Files no upload has sent before (a content sent once is not asked for again). */
let fresh = 0;
const newFiles = () => ({ 'main.py': `print("hello ${++fresh}")\n`, 'lib/util.py': 'X = 1\n' });
const tarOf = (f: Record<string, string>) => craftTar(Object.entries(f).map(([path, body]) => ({ path, body })));

interface Answer {
  status: number;
  body: string;
}

/**
 * One request exactly as given: the path is not normalised (`..` stays), the body is written
 * as it is, and `headers` may declare any length. Write errors (the server closing early) are
 * ignored; the answer is what matters.
 */
function raw(method: string, path: string, options: { token?: string; headers?: Record<string, string | number>; body?: Buffer[] } = {}): Promise<Answer> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({
      agent: false,
      host: url.hostname,
      port: url.port,
      method,
      path,
      headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    for (const chunk of options.body ?? []) req.write(chunk);
    req.end();
  });
}

const messageOf = (a: Answer) => (JSON.parse(a.body) as { error: { code: string; message: string } }).error;

beforeAll(async () => {
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim', 'team-a');
  lee = await admin.addUser('lee', 'team-b');
  kimToken = kim.token();
  leeToken = lee.token();
  const code = [
    'import nsml',
    'nsml.bind(save=lambda d: open(d + "/w", "w").write("weights"), load=lambda d: None, infer=lambda x: x)',
    'nsml.save("best")',
    'print("secret of kim")',
  ].join('\n');
  const p = project({ 'main.py': `${code}\n` });
  cleanups.push(p.cleanup);
  const r = await kim.khd(['run', '-i'], { cwd: p.root });
  expect(r.code, r.stderr).toBe(EXIT.ok);
  kimSession = /Session (\S+) is started/.exec(r.stdout + r.stderr)![1]!;
});

afterAll(async () => {
  for (const p of [admin, kim, lee]) p.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

describe('upload bodies that lie about their size', () => {
  it('refuses a declared size over the cap before reading a byte of the body', async () => {
    const files = newFiles();
    const { id } = await createUpload(server.url, kimToken, files);
    // Nothing but the headers is ever sent: an answer proves the body was not waited for.
    const a = await raw('PUT', `/api/v1/uploads/${id}`, {
      token: kimToken,
      headers: { 'content-type': 'application/gzip', 'content-length': 10 * 1024 ** 3 },
    });
    expect(a.status).toBe(413);
    expect(messageOf(a).message).toMatch(/^the upload body declares 10737418240 bytes, more than its files could take \(\d+\)$/);
  });

  it('counts a body without a declared size as it streams, and refuses it past the cap', async () => {
    const files = newFiles();
    const { id } = await createUpload(server.url, kimToken, files);
    const junk = Array.from({ length: 48 }, () => randomBytes(64 * 1024));
    const a = await raw('PUT', `/api/v1/uploads/${id}`, {
      token: kimToken,
      headers: { 'content-type': 'application/x-tar', 'transfer-encoding': 'chunked' },
      body: [tarOf(files), ...junk],
    });
    expect(a.status).toBe(413);
    expect(messageOf(a).message).toMatch(/^upload refused: the body is over [\d.]+ MB, more than its files could take$/);
  });

  it('reads a body larger than declared only up to the declared length, and loses nothing', async () => {
    const files = newFiles();
    const { id } = await createUpload(server.url, kimToken, files);
    const whole = gz(tarOf(files));
    const a = await raw('PUT', `/api/v1/uploads/${id}`, {
      token: kimToken,
      headers: { 'content-type': 'application/gzip', 'content-length': Math.floor(whole.length / 2) },
      body: [whole],
    });
    // The bytes past the declared length are not the upload's: they reach Node's HTTP parser as
    // a next request, which it refuses (400) before the upload's own refusal (422) is written.
    expect([400, 422]).toContain(a.status);
    // The same upload still takes an honest body, once the refused one has been let go.
    await untilReceivingAgain(server.services, id);
    const again = await raw('PUT', `/api/v1/uploads/${id}`, {
      token: kimToken,
      headers: { 'content-type': 'application/gzip', 'content-length': whole.length },
      body: [whole],
    });
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body)).toMatchObject({ id, state: 'ready', send: [] });
  });

  it('refuses a content that does not match its manifest hash, naming the file', async () => {
    const files = newFiles();
    const { id } = await createUpload(server.url, kimToken, files);
    const lying = gz(tarOf({ ...files, 'main.py': files['main.py'].toUpperCase() }));
    const a = await raw('PUT', `/api/v1/uploads/${id}`, {
      token: kimToken,
      headers: { 'content-type': 'application/gzip', 'content-length': lying.length },
      body: [lying],
    });
    expect(a.status).toBe(422);
    expect(messageOf(a).message).toMatch(/^upload refused: 'main.py' arrived with sha256 [0-9a-f]{12}…, the manifest says [0-9a-f]{12}…$/);
  });
});

describe('paths that climb out of their route', () => {
  const climbing = (session: string) => [
    `/api/v1/sessions/lee/None/1/../../../${session}`,
    `/api/v1/sessions/lee/../${session}`,
    `/api/v1/sessions/..%2F..%2F${session.replaceAll('/', '%2F')}`,
    `/api/v1/sessions/${session.replaceAll('/', '%2F')}/x/y`,
    `/api/v1/sessions/%2e%2e/%2e%2e/${session}/logs`,
    `/api/v1/uploads/..%2F..%2F..%2Fkhd.db`,
    `/api/v1/datasets/..%2F..%2Fetc/board`,
  ];

  it('answers /sessions/../other and its encoded forms as not found, never with the other session', async () => {
    const statuses: number[] = [];
    for (const path of climbing(kimSession)) {
      const a = await raw('GET', path, { token: leeToken });
      statuses.push(a.status);
      // Not found, or (a raw `..` segment) refused before anything resolves it.
      expect([400, 403, 404], path).toContain(a.status);
      if (a.status === 403) expect(messageOf(a).message, path).toBe("forbidden path: '.', '..' and empty segments are never resolved");
      expect(a.body, path).not.toContain('secret of kim');
      expect(a.body, path).not.toContain('"status"');
    }
    // The two raw `..` forms are the refused ones.
    expect(statuses.slice(0, 2)).toEqual([403, 403]);
    // The plain path works for its owner: the refusals above are not a broken route.
    expect((await raw('GET', `/api/v1/sessions/${kimSession}`, { token: kimToken })).status).toBe(200);
  });
});

describe('tokens', () => {
  it('answers another team’s token exactly as for a session that does not exist', async () => {
    const missing = kimSession.replace(/\d+$/, '999');
    const asIfMissing = (a: Answer) => ({ status: a.status, body: a.body.replaceAll(kimSession, missing) });
    const requests: [string, string, Record<string, string>?, Buffer[]?][] = [
      ['GET', ''],
      ['GET', '/logs'],
      ['GET', '/models'],
      ['DELETE', '/models/best'],
      ['POST', '/stop'],
      ['PATCH', '', { 'content-type': 'application/json' }, [Buffer.from('{"memo":"mine now"}')]],
      ['DELETE', '?force=1'],
    ];
    for (const [method, suffix, headers, body] of requests) {
      const theirs = await raw(method, `/api/v1/sessions/${kimSession}${suffix}`, { token: leeToken, headers, body });
      const none = await raw(method, `/api/v1/sessions/${missing}${suffix}`, { token: leeToken, headers, body });
      expect(theirs.status, `${method} ${suffix}`).toBe(404);
      expect(asIfMissing(theirs), `${method} ${suffix}`).toEqual(none);
    }
    // Kim's session, log and checkpoint are all still there.
    expect((await kim.khd(['logs', kimSession])).stdout).toBe('secret of kim\n');
    expect((await kim.khd(['model', 'ls', kimSession])).stdout).toContain('best');
  });

  it('answers another user’s upload exactly as one that does not exist', async () => {
    const files = newFiles();
    const { id } = await createUpload(server.url, kimToken, files);
    const missing = '00000000-0000-4000-8000-000000000000';
    const body = gz(tarOf(files));
    for (const method of ['PUT', 'DELETE']) {
      const headers = { 'content-type': 'application/gzip', 'content-length': body.length };
      const theirs = await raw(method, `/api/v1/uploads/${id}`, { token: leeToken, headers, body: method === 'PUT' ? [body] : [] });
      const none = await raw(method, `/api/v1/uploads/${missing}`, { token: leeToken, headers, body: method === 'PUT' ? [body] : [] });
      expect(theirs.status, method).toBe(404);
      expect(theirs.body.replaceAll(id, missing), method).toBe(none.body);
    }
  });

  it('refuses an expired token, a revoked one, and a token in the URL instead of the header', async () => {
    const kimRow = server.services.accounts.userByName('kim')!;
    const expired = newToken();
    server.services.accounts.addToken(kimRow.id, expired, -1000);
    const a = await raw('GET', '/api/v1/sessions', { token: expired });
    expect(a.status).toBe(401);
    expect(messageOf(a)).toEqual({ code: 'KHD_TOKEN_EXPIRED', message: 'your login has expired: run khd login' });

    const p = new Participant(server.url);
    await p.login('kim', 'kim-password');
    const revoked = p.token();
    expect((await p.khd(['logout'])).code).toBe(EXIT.ok);
    expect((await raw('GET', '/api/v1/sessions', { token: revoked })).status).toBe(401);
    p.cleanup();

    for (const query of [`token=${kimToken}`, `access_token=${kimToken}`]) {
      const inUrl = await raw('GET', `/api/v1/sessions?${query}`);
      expect(inUrl.status, query).toBe(401);
    }
  });
});

describe('parameters out of range', () => {
  it('answers each route’s query parameters out of range with 400 naming the parameter, never 500', async () => {
    const s = `/api/v1/sessions/${kimSession}`;
    const cases: [string, string, string][] = [
      ['GET', '/api/v1/sessions?limit=99999999999999999999', 'limit'],
      ['GET', '/api/v1/sessions?limit=0', 'limit'],
      ['GET', '/api/v1/sessions?limit=-1', 'limit'],
      ['GET', '/api/v1/sessions?limit=1e3x', 'limit'],
      ['GET', '/api/v1/sessions?all=yes', 'all'],
      ['GET', `/api/v1/sessions?dataset=${'d'.repeat(200)}`, 'dataset'],
      ['GET', `${s}/metrics?offset=-5`, 'offset'],
      ['GET', `${s}/metrics?offset=99999999999999999999`, 'offset'],
      ['GET', `${s}/metrics?offset=abc`, 'offset'],
      ['GET', `${s}/logs?tail=-1`, 'tail'],
      ['GET', `${s}/logs?tail=99999999999999999999`, 'tail'],
      ['GET', `${s}/logs?follow=maybe`, 'follow'],
      ['DELETE', `${s}?force=please`, 'force'],
    ];
    for (const [method, path, param] of cases) {
      const answer = await raw(method, path, { token: kimToken });
      expect(answer.status, `${method} ${path}`).toBe(400);
      expect(messageOf(answer).message, path).toContain(param);
    }
    const resume = await raw('GET', `${s}/logs`, { token: kimToken, headers: { 'last-event-id': '99999999999999999999' } });
    expect(resume.status).toBe(400);
    // Nothing was removed by the refused DELETE.
    expect((await raw('GET', s, { token: kimToken })).status).toBe(200);
  });

  it('refuses a manifest naming a file and a folder of the same name (also by case) before writing anything', async () => {
    for (const paths of [['x', 'x/y'], ['lib/util.py', 'LIB/util.py/z'], ['a/b/c', 'a/b']]) {
      const files = paths.map((path) => ({ path, size: 1, mode: 0o644, sha256: 'a'.repeat(64) }));
      const answer = await raw('POST', '/api/v1/uploads', {
        token: kimToken, headers: { 'content-type': 'application/json' }, body: [Buffer.from(JSON.stringify({ purpose: 'session', files }))],
      });
      // The catalogue's answer to every refused manifest (KHD_UPLOAD_INVALID).
      expect(answer.status, paths.join(' + ')).toBe(422);
      expect(messageOf(answer).message).toMatch(/is a file, and a folder of/);
    }
  });
});

describe('login floods', () => {
  it('answers a locked name with 429 and Retry-After, after exactly 5 password checks among 50 at once', async () => {
    const login = () => raw('POST', '/api/v1/auth/login', { headers: { 'content-type': 'application/json' }, body: [Buffer.from(JSON.stringify({ user: 'flooded', password: 'guess' }))] });
    const answers = await Promise.all(Array.from({ length: 50 }, login));
    expect(answers.filter((a) => a.status === 401)).toHaveLength(5);
    const locked = answers.filter((a) => a.status === 429);
    expect(locked).toHaveLength(45);
    expect(messageOf(locked[0]!).code).toBe('KHD_LOGIN_LOCKED');
    const again = await new Promise<number>((resolve, reject) => {
      const url = new URL(server.url);
      const req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/api/v1/auth/login', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(Number(res.headers['retry-after']));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ user: 'flooded', password: 'guess' }));
    });
    expect(again).toBeGreaterThan(14 * 60);
  });
});

describe('manifest bombs', () => {
  /** A gzipped manifest that inflates to `mib` MiB of whitespace inside valid-looking JSON. */
  async function bomb(mib: number): Promise<Buffer> {
    const spaces = Buffer.alloc(1024 * 1024, 0x20);
    const parts: Buffer[] = [];
    const gzip = createGzip({ level: 9 });
    gzip.on('data', (c: Buffer) => parts.push(c));
    const done = new Promise((resolve) => gzip.on('end', resolve));
    async function* body() {
      yield Buffer.from('{"purpose":"session","files":[');
      for (let i = 0; i < mib; i++) yield spaces;
      yield Buffer.from(']}');
    }
    for await (const chunk of body()) if (!gzip.write(chunk)) await new Promise((r) => gzip.once('drain', r));
    gzip.end();
    await done;
    return Buffer.concat(parts);
  }

  it('stops twelve at once where a participant’s manifest could end (413), without inflating them', async () => {
    const body = await bomb(500);
    expect(body.length).toBeLessThan(1024 * 1024);
    const before = process.memoryUsage().rss;
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => raw('POST', '/api/v1/uploads', { token: kimToken, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: [body] })),
    );
    for (const answer of answers) {
      expect(answer.status).toBe(413);
      expect(messageOf(answer).message).toContain('the manifest inflates to more than');
    }
    // Before the cap: 1.6 GB of RSS for one, 7.7 GB for twelve.
    expect(process.memoryUsage().rss - before).toBeLessThan(512 * 1024 * 1024);
  });
});
