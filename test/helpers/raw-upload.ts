import { request } from 'node:http';
import { craftTar, gz, manifestOf } from './craft-tar.js';

/** POST /uploads with the manifest of `files`, as the CLI would; returns the upload's id and what to send. */
export async function createUpload(url: string, token: string, files: Record<string, string>): Promise<{ id: string; send: string[] }> {
  const res = await fetch(`${url}/api/v1/uploads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ purpose: 'session', files: manifestOf(files) }),
  });
  return (await res.json()) as { id: string; send: string[] };
}

/**
 * Sends the first `share` of the gzipped tar of `files` and then cuts the connection, as a
 * network failure would; `hold` leaves it open instead (for a server that goes away itself).
 */
export function sendPartialUpload(url: string, token: string, id: string, files: Record<string, string>, share: number, hold = false): Promise<void> {
  const body = gz(craftTar(Object.entries(files).map(([path, b]) => ({ path, body: b }))));
  return new Promise<void>((resolve) => {
    const req = request(`${url}/api/v1/uploads/${id}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/gzip', 'content-length': body.length },
    });
    req.on('error', () => resolve());
    req.on('response', () => resolve());
    req.write(body.subarray(0, Math.floor(body.length * share)), () => {
      if (!hold) setTimeout(() => req.destroy(), 150);
    });
  });
}

/**
 * Resolves once the server is done with a cut-off body: the upload is back to `receiving`, so
 * what arrived whole is committed and nothing of it is still being read. The event to wait for
 * after a cut, instead of a pause.
 */
export async function untilReceivingAgain(services: { db: { prepare(sql: string): { get(id: string): unknown } } }, id: string): Promise<void> {
  const { expect } = await import('vitest');
  await expect.poll(() => (services.db.prepare('SELECT state FROM uploads WHERE id = ?').get(id) as { state: string }).state).toBe('receiving');
}

/** Resolves once the server holds the content of each of `bodies` (the blob files exist). */
export async function untilStored(dataDir: string, bodies: string[]): Promise<void> {
  const [{ expect }, { createHash }, { existsSync }, { join }] = await Promise.all([import('vitest'), import('node:crypto'), import('node:fs'), import('node:path')]);
  const paths = bodies.map((b) => {
    const sha = createHash('sha256').update(b).digest('hex');
    return join(dataDir, 'blobs', sha.slice(0, 2), sha);
  });
  await expect.poll(() => paths.every((p) => existsSync(p))).toBe(true);
}
