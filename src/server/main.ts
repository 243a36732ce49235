import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { AuthOptions } from './auth/auth-service.js';
import { detectGpuCount } from './executor/gpus.js';
import { LocalExecutor } from './executor/local-executor.js';
import { resolvePython } from './executor/python.js';
import { nsmlRuntimeDir } from './executor/runtime-path.js';
import { findBubblewrap } from './executor/sandbox.js';
import { createServices, type Services, type ServicesOptions } from './services.js';

export interface ServerOptions {
  host: string;
  port: number;
  dataDir: string;
  gpus?: number;
  python?: string;
  noSandbox?: boolean;
  adminPassword?: string;
  /** Password hashing cost and token lifetime; tests lower the cost. */
  auth?: AuthOptions;
  heartbeatMs?: number;
  submitPollMs?: number;
  limits?: ServicesOptions['limits'];
  /** Where the one-time admin password and warnings go (stderr). */
  warn: (message: string) => void;
}

export interface RunningServer {
  app: FastifyInstance;
  services: Services;
  url: string;
  close(): Promise<void>;
}

/** Opens the data dir, creates the admin on first start, listens, and recovers old sessions. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const python = resolvePython(options.python ?? 'python3');
  const bubblewrap = options.noSandbox ? undefined : findBubblewrap();
  if (!bubblewrap) {
    options.warn(
      options.noSandbox
        ? 'warning: --no-sandbox: sessions run as plain processes that can see this machine and its network'
        : 'warning: bubblewrap (bwrap) is not installed: sessions run without a sandbox; install it (apt-get install bubblewrap)',
    );
  }
  const executor = new LocalExecutor({ python, runtimeDir: nsmlRuntimeDir(), bubblewrap });
  const services = createServices({
    dataDir: resolve(options.dataDir),
    executor,
    gpus: options.gpus ?? detectGpuCount(),
    auth: options.auth,
    heartbeatMs: options.heartbeatMs,
    submitPollMs: options.submitPollMs,
    limits: options.limits,
    warn: options.warn,
  });
  const admin = await services.auth.bootstrapAdmin(options.adminPassword);
  if (admin?.generated) {
    options.warn(`created user 'admin' with password: ${admin.generated}\n(shown only this once; set KHD_ADMIN_PASSWORD to choose it)`);
  }
  const app = buildApp(services, {
    logError: (err, request) => options.warn(`error: ${request.method} ${request.url.split('?')[0]}: ${err.stack ?? err.message}`),
  });
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    // The data dir stays consistent and closed for whoever starts next.
    await services.close();
    throw err;
  }
  services.sessions.recover();
  services.submits.recover();
  services.startSweeping();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    app,
    services,
    url: `http://${host}:${port}`,
    async close() {
      // Ending the sessions first lets every log follower receive its `end` event and go.
      await services.sessions.shutdown();
      await app.close();
      await services.close();
    },
  };
}
