// The routes the dashboard calls beyond the CLI's, against the real server on loopback: the
// metrics of a session, everyone's sessions and the users for organisers, and the page itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { Me, MetricsPage, SessionInfo } from '../../src/protocol/types.js';
import { project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let admin: Participant;
let kim: Participant;
let lee: Participant;
let session: string;
const cleanups: (() => void)[] = [];

const REPORTING_PY = `
import nsml
for i in range(1, 4):
    nsml.report(step=i * 10, train__loss=1.0 / i, val__acc=i / 4)
nsml.report(summary=True, epoch=3)
print('done')
`;

async function get<T>(who: Participant, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${server.url}/api/v1${path}`, { headers: { authorization: `Bearer ${who.token()}` } });
  return { status: res.status, body: (await res.json()) as T };
}

beforeAll(async () => {
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim', 'team-a');
  lee = await admin.addUser('lee', 'team-b');
  const p = project({ 'main.py': REPORTING_PY });
  cleanups.push(p.cleanup);
  const r = await kim.khd(['run', '-i'], { cwd: p.root });
  expect(r.code, r.stderr).toBe(EXIT.ok);
  session = /Session (\S+) is started/.exec(r.stdout)![1]!;
});

afterAll(async () => {
  for (const p of [admin, kim, lee]) p.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

describe('GET /sessions/:name/metrics', () => {
  it('returns what nsml.report recorded, and nothing again from the offset it gave', async () => {
    const first = await get<MetricsPage>(kim, `/sessions/${session}/metrics`);
    expect(first.status).toBe(200);
    expect(first.body.points.map((p) => [p.step, p.metrics])).toEqual([
      [10, { train__loss: 1, val__acc: 0.25 }],
      [20, { train__loss: 0.5, val__acc: 0.5 }],
      [30, { train__loss: 1 / 3, val__acc: 0.75 }],
      [null, { epoch: 3 }],
    ]);
    expect(first.body.points.every((p) => typeof p.ts === 'number')).toBe(true);
    expect(first.body.more).toBe(false);
    const again = await get<MetricsPage>(kim, `/sessions/${session}/metrics?offset=${first.body.offset}`);
    expect(again.body).toEqual({ offset: first.body.offset, points: [], more: false });
  });

  it('refuses a bad offset, and answers another team like a missing session', async () => {
    const bad = await get<{ error: { message: string } }>(kim, `/sessions/${session}/metrics?offset=-1`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toBe('bad request: querystring/offset must be >= 0');
    const theirs = await get<{ error: { message: string } }>(lee, `/sessions/${session}/metrics`);
    expect(theirs.status).toBe(404);
    expect(theirs.body.error.message).toBe(`session ${session} does not exist: see khd ps -a`);
  });
});

describe('organiser routes', () => {
  it('lists everyone’s sessions and the users to an admin only', async () => {
    const all = await get<SessionInfo[]>(admin, '/sessions?everyone=1&all=1');
    expect(all.status).toBe(200);
    expect(all.body.map((s) => s.name)).toContain(session);
    const refused = await get<{ error: { code: string; message: string } }>(kim, '/sessions?everyone=1&all=1');
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toBe("only an admin can list everyone's sessions");
    // Without the flag an admin sees their own, as khd ps does.
    expect((await get<SessionInfo[]>(admin, '/sessions?all=1')).body).toEqual([]);

    const users = await get<Me[]>(admin, '/users');
    expect(users.body).toEqual([
      { user: 'admin', team: 'admin', admin: true },
      { user: 'kim', team: 'team-a', admin: false },
      { user: 'lee', team: 'team-b', admin: false },
    ]);
    const notAdmin = await get<{ error: { code: string } }>(lee, '/users');
    expect(notAdmin.status).toBe(403);
    expect(notAdmin.body.error.code).toBe('KHD_FORBIDDEN');
  });
});

describe('the page', () => {
  it('is served at / without a login, and an unknown path is a 404 that says page, not API route', async () => {
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<main id="main"');
    const missing = await fetch(`${server.url}/no-such-page`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toBe('no such page: GET /no-such-page');
  });
});
