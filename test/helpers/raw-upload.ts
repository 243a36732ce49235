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
