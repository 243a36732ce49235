import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { AuthOptions } from './auth/auth-service.js';
import { detectGpuCount } from './executor/gpus.js';
import { DEFAULT_SESSION_UID, LocalExecutor, missingLaunchTools } from './executor/local-executor.js';
import type { SessionLimits } from './config.js';
import { resolvePython } from './executor/python.js';
import { nsmlRuntimeDir } from './package-files.js';
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
  /** What one session may use at most; the rest default (see SessionLimits). */
  sessionLimits?: Partial<SessionLimits>;
  /** The uid sandboxed sessions run as under a root server (default 65534, nobody). */
  sessionUid?: number;
  /** Processes and threads one session may have. */
  maxProcesses?: number;
  /** Size of a session's private /tmp. */
  tmpBytes?: number;
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
  if (!bubblewrap && !options.noSandbox) {
    throw new Error('bubblewrap (bwrap) is not installed, and sessions never run unsandboxed by default: install it (apt-get install bubblewrap), or pass --no-sandbox to run them as plain processes');
  }
  if (!bubblewrap) options.warn('warning: --no-sandbox: sessions run as plain processes that can see this machine and its network');
  const missing = missingLaunchTools();
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: sessions' limits need util-linux (apt-get install util-linux)`);
  const executor = new LocalExecutor({
    python, runtimeDir: nsmlRuntimeDir(), bubblewrap,
    // Only root can run sessions as another uid; a server run by a user runs them as that user.
    sessionUid: process.getuid?.() === 0 ? (options.sessionUid ?? DEFAULT_SESSION_UID) : undefined,
    maxProcesses: options.maxProcesses, tmpBytes: options.tmpBytes,
  });
  const services = createServices({
    dataDir: resolve(options.dataDir),
    executor,
    gpus: options.gpus ?? detectGpuCount(),
    auth: options.auth,
    heartbeatMs: options.heartbeatMs,
    submitPollMs: options.submitPollMs,
    limits: options.limits,
    sessionLimits: options.sessionLimits,
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
