import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient } from '../../src/cli/api/client.js';
import { streamLog } from '../../src/cli/api/log-stream.js';
import { parseSessionName } from '../../src/protocol/session-name.js';
import type { LogRecord } from '../../src/protocol/types.js';
import { project, TICKER_PY } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let admin: Participant;
let token: string;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  token = admin.token();
});
afterAll(async () => {
  admin.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

async function startTicker(count: number, interval: number): Promise<string> {
  const p = project({ 'main.py': TICKER_PY });
  cleanups.push(p.cleanup);
  const r = await admin.khd(['run', '-a', `${count} ${interval}`], { cwd: p.root });
  return r.stdout.trim().replace(/^Session (.*) is started$/, '$1');
}

describe('following a log over SSE', () => {
  it('survives the server dropping every connection mid-stream: each line once, in order', async () => {
    const name = await startTicker(60, 0.02);
    const client = createApiClient(server.url, token);
    const seen: LogRecord[] = [];
    const reconnects: number[] = [];
    const sleeps: number[] = [];
    // Cut every open connection a few times while the session prints.
    const cutter = setInterval(() => server.app.server.closeAllConnections(), 150);
    const end = await streamLog(client, {
      name: parseSessionName(name),
      follow: true,
      onRecord: (r) => seen.push(r),
      onReconnect: (attempt) => reconnects.push(attempt),
      sleep: async (ms) => void sleeps.push(ms),
    }).finally(() => clearInterval(cutter));
    expect(end).toEqual({ status: 'Exited', exitCode: 0, reason: null });
    expect(seen.map((r) => r.line)).toEqual(Array.from({ length: 60 }, (_, i) => `tick ${i + 1}`));
    expect(seen.map((r) => r.id)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(reconnects.length).toBeGreaterThan(0);
    expect(Math.max(...sleeps)).toBeLessThanOrEqual(5_000);
  });

  it('backs off with bounded, growing delays while the server is unreachable', async () => {
    const client = createApiClient('http://127.0.0.1:9', token);
    const sleeps: number[] = [];
    const controller = new AbortController();
    const pending = streamLog(client, {
      name: parseSessionName('admin/None/1'),
      follow: true,
      onRecord: () => {},
      sleep: async (ms) => {
        sleeps.push(ms);
        if (sleeps.length === 8) controller.abort();
      },
      signal: controller.signal,
    });
    await expect(pending).rejects.toThrow();
    expect(sleeps).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('refuses a forged Last-Event-ID: one past the end of the log, and a malformed one', async () => {
    const name = await startTicker(2, 0);
    await admin.khd(['logs', name, '-f']);
    const get = (lastId: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const url = new URL(`/api/v1/sessions/${name}/logs`, server.url);
        const req = request(url, { headers: { authorization: `Bearer ${token}`, 'last-event-id': lastId } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const high = await get('999');
    expect(high.status).toBe(400);
    expect(JSON.parse(high.body).error.message).toBe('Last-Event-ID 999 is past the end of the log (2 lines)');
    expect((await get('-1')).status).toBe(400);
    const last = await get('1');
    expect(last.status).toBe(200);
    expect(last.body).toMatch(/^id: 2\ndata: .*"line":"tick 2"/);
    expect(last.body).toContain('event: end\ndata: {"status":"Exited","exitCode":0,"reason":null}');
  });

  it('sends heartbeats on an idle stream', async () => {
    const name = await startTicker(1, 3);
    const url = new URL(`/api/v1/sessions/${name}/logs?follow=1`, server.url);
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(body).toContain('data: {"id":1');
    expect(body).toContain(': heartbeat\n\n');
    expect(body).toMatch(/event: end\n/);
  });
});
