import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, ConnectionError, createApiClient } from '../../src/cli/api/client.js';

// The CLI's HTTP layer against plain Node servers on loopback that misbehave on purpose.
const servers: Server[] = [];

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server; connections: () => number }> {
  let connections = 0;
  const server = createServer(handler);
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, connections: () => connections };
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
};

describe('the CLI’s HTTP client', () => {
  it('sends the token, JSON and the query, and reads JSON back over one kept-alive connection', async () => {
    const seen: { auth?: string; url?: string; body: string }[] = [];
    const s = await serve((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ auth: req.headers.authorization, url: req.url, body });
        json(res, 200, { ok: seen.length });
      });
    });
    const client = createApiClient(s.url, 'khd_secret');
    expect(await client.request({ method: 'POST', url: '/x', data: { a: 1 }, params: { all: '1', skip: undefined, n: 5 } })).toEqual({ ok: 1 });
    expect(await client.request({ method: 'GET', url: '/y' })).toEqual({ ok: 2 });
    expect(seen[0]).toEqual({ auth: 'Bearer khd_secret', url: '/api/v1/x?all=1&n=5', body: '{"a":1}' });
    expect(s.connections()).toBe(1);
  });

  it('turns an error body into ApiError with its code, message and Retry-After; an unknown body into the status', async () => {
    const s = await serve((req, res) => {
      if (req.url?.endsWith('/busy')) json(res, 429, { error: { code: 'KHD_TOO_MANY_REQUESTS', message: 'slow down' } }, { 'retry-after': '3' });
      else {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>bad gateway</html>');
      }
    });
    const client = createApiClient(s.url, undefined);
    const busy = await client.request({ method: 'GET', url: '/busy' }).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(ApiError);
    expect(busy).toMatchObject({ code: 'KHD_TOO_MANY_REQUESTS', message: 'slow down', status: 429, retryAfterMs: 3000 });
    const proxy = await client.request({ method: 'GET', url: '/other' }).catch((e: unknown) => e);
    expect(proxy).toMatchObject({ code: 'KHD_INTERNAL', status: 502, message: 'the server answered 502 Bad Gateway' });
  });

  it('never follows a redirect, so the token is not sent where it points', async () => {
    const elsewhere: (string | undefined)[] = [];
    const target = await serve((req, res) => {
      elsewhere.push(req.headers.authorization);
      json(res, 200, {});
    });
    const s = await serve((_req, res) => {
      res.writeHead(302, { location: `${target.url}/steal` });
      res.end();
    });
    const err = await createApiClient(s.url, 'khd_secret').request({ method: 'GET', url: '/me' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ApiError', status: 302 });
    expect(elsewhere).toEqual([]);
  });

  it('says which server could not be reached, and why; the token is in no message', async () => {
    const s = await serve(() => {});
    const url = s.url;
    await new Promise((resolve) => {
      s.server.closeAllConnections();
      s.server.close(resolve);
    });
    servers.length = 0;
    const err = await createApiClient(url, 'khd_secret').request({ method: 'GET', url: '/info' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ reason: 'ECONNREFUSED' });
    expect((err as Error).message).toContain(url);
    expect((err as Error).message).not.toContain('khd_secret');
  });

  it('gives up on a server that never answers after the timeout, and on a connection cut mid-answer', async () => {
    const s = await serve((req, res) => {
      if (req.url?.endsWith('/cut')) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"partial":');
        setImmediate(() => req.socket.destroy());
      }
      // else: never answers
    });
    const client = createApiClient(s.url, undefined);
    await expect(client.request({ method: 'GET', url: '/hang', timeout: 50 })).rejects.toMatchObject({ name: 'ConnectionError', reason: 'timed out' });
    await expect(client.request({ method: 'GET', url: '/cut' })).rejects.toMatchObject({ name: 'ConnectionError' });
  });

  it('stops at once when cancelled, and passes a failing request body’s own error on as it is', async () => {
    let received = 0;
    const s = await serve((req) => req.on('data', (c: Buffer) => (received += c.length)));
    const client = createApiClient(s.url, undefined);
    const controller = new AbortController();
    const pending = client.request({ method: 'PUT', url: '/up', data: Readable.from(['x'.repeat(1000)]), timeout: 0, signal: controller.signal });
    await expect.poll(() => received).toBe(1000);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });

    const changed = Object.assign(new Error('main.py changed while it was being sent'), { name: 'FileChangedError' });
    const body = new Readable({ read() {} });
    const sending = client.request({ method: 'PUT', url: '/up', data: body, timeout: 0 });
    body.push('abc');
    await expect.poll(() => received).toBe(1003);
    body.destroy(changed);
    await expect(sending).rejects.toBe(changed);
  });

  it('streams a 200 answer, and reads a refused stream as ApiError', async () => {
    const s = await serve((req, res) => {
      if (req.url?.endsWith('/denied')) return json(res, 403, { error: { code: 'KHD_FORBIDDEN', message: 'not yours' } });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-khd-files': '2' });
      res.write('one\n');
      res.end('two\n');
    });
    const client = createApiClient(s.url, undefined);
    const response = await client.stream({ method: 'GET', url: '/logs', timeout: 0 });
    expect(response.headers['x-khd-files']).toBe('2');
    let text = '';
    for await (const chunk of response.body) text += chunk;
    expect(text).toBe('one\ntwo\n');
    await expect(client.stream({ method: 'GET', url: '/denied' })).rejects.toMatchObject({ name: 'ApiError', code: 'KHD_FORBIDDEN', message: 'not yours', status: 403 });
  });
});
