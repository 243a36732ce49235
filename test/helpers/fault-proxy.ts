import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the proxy does with one request: pass it on, answer it itself, or cut the connection. */
export type Fault = 'pass' | 'reset' | { status: number; headers?: Record<string, string>; body?: unknown };

export interface FaultProxy {
  url: string;
  /** The requests seen, as `METHOD /path`, with the fault each got. */
  seen: string[];
  close(): Promise<void>;
}

/**
 * A proxy on loopback in front of a real server, injecting faults at the request that proves
 * the moment has come (the first POST /sessions, the second poll of a submit), never on a timer.
 */
export async function startFaultProxy(
  target: string,
  decide: (req: IncomingMessage) => Fault,
  /** What each piece of a passed request's body becomes on the way (`at`: its offset in the body). */
  alter?: (req: IncomingMessage, chunk: Buffer, at: number) => Buffer,
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const seen: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const fault = decide(req);
    seen.push(`${req.method} ${req.url?.split('?')[0]} ${typeof fault === 'string' ? fault : fault.status}`);
    if (fault === 'reset') return void req.socket.destroy();
    if (fault !== 'pass') {
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      return void res.end(JSON.stringify(fault.body ?? {}));
    }
    const out = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    if (!alter) return void req.pipe(out);
    let at = 0;
    req.on('data', (chunk: Buffer) => {
      const changed = alter(req, chunk, at);
      at += chunk.length;
      if (!out.write(changed)) req.pause();
    });
    out.on('drain', () => req.resume());
    req.on('end', () => out.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
