// The CLI waits out what will pass (a server restarting or shutting down answers 503; a
// connection drops) instead of giving up: `run`, `dataset push` and `submit`, each with the
// fault injected at the request that proves the moment has come.
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import { startFaultProxy, type Fault, type FaultProxy } from '../helpers/fault-proxy.js';
import { project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';
import { submitDataset, SUBMIT_PROJECT_PY } from '../helpers/submit-project.js';

let server: TestServer;
let proxy: FaultProxy;
let admin: Participant;
const cleanups: (() => void)[] = [];
/** The next fault for requests matching a pattern, used once. */
const faults: { method: string; path: RegExp; fault: Fault }[] = [];

const SHUTTING_DOWN: Fault = { status: 503, headers: { 'retry-after': '1' }, body: { code: 'FST_ERR_CLOSING', message: 'Service Unavailable' } };

beforeAll(async () => {
  server = await startTestServer();
  proxy = await startFaultProxy(server.url, (req: IncomingMessage) => {
    const i = faults.findIndex((f) => f.method === req.method && f.path.test(req.url ?? ''));
    return i < 0 ? 'pass' : faults.splice(i, 1)[0]!.fault;
  });
  admin = new Participant(proxy.url);
  await admin.login('admin', ADMIN_PASSWORD);
});

afterAll(async () => {
  admin.cleanup();
  cleanups.forEach((c) => c());
  await proxy.close();
  await server.stop();
});

describe('a server that is away for a moment', () => {
  it('dataset push waits for it, and pushes', async () => {
    const data = submitDataset();
    cleanups.push(data.cleanup);
    faults.push({ method: 'POST', path: /^\/api\/v1\/datasets$/, fault: SHUTTING_DOWN });
    const r = await admin.khd(['dataset', 'push', 'toy', data.root, '--leaderboard']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stderr).toContain('pushing the dataset: the server is restarting or shutting down; trying again in 1.0 s (attempt 1 of 12)\n');
    expect(r.stderr).toContain('✓ Pushed dataset toy');
  });

  it('run waits for it between the upload and the start, and starts the session once', async () => {
    const p = project({ 'main.py': SUBMIT_PROJECT_PY });
    cleanups.push(p.cleanup);
    faults.push({ method: 'POST', path: /^\/api\/v1\/sessions$/, fault: SHUTTING_DOWN });
    const r = await admin.khd(['run', '-d', 'toy', '-i'], { cwd: p.root });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stderr).toContain('starting the session: the server is restarting or shutting down; trying again in 1.0 s (attempt 1 of 12)\n');
    expect(r.stdout).toContain('Session admin/toy/1 is started');
    const all = JSON.parse((await admin.khd(['ps', '-a', '--json'])).stdout) as unknown[];
    expect(all).toHaveLength(1);
  });

  it('submit follows its stages again after the connection drops, by the submit’s id', async () => {
    faults.push({ method: 'POST', path: /^\/api\/v1\/submits$/, fault: SHUTTING_DOWN });
    faults.push({ method: 'GET', path: /^\/api\/v1\/submits\/\d+$/, fault: 'reset' });
    const r = await admin.khd(['submit', 'admin/toy/1', 'best']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stderr).toContain('submitting: the server is restarting or shutting down; trying again in 1.0 s (attempt 1 of 12)\n');
    expect(r.stderr).toMatch(/following submit \d+: cannot reach the khd server at .* \(ECONNRESET\).*; trying again in 0\.5 s \(attempt 1 of 12\)\n/);
    expect(r.stdout).toBe('Score: 0.75\n');
    expect(proxy.seen.filter((s) => s.startsWith('POST /api/v1/submits'))).toEqual(['POST /api/v1/submits 503', 'POST /api/v1/submits pass']);
  });

  it('a failure that will not pass is not retried: a refusal stays a refusal', async () => {
    const r = await admin.khd(['submit', 'admin/toy/99', 'best']);
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toBe('error: session admin/toy/99 does not exist: see khd ps -a\n');
  });
});
