import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { AuthOptions } from './auth/auth-service.js';
import { detectGpuCount } from './executor/gpus.js';
import { detectCgroups } from './executor/cgroups.js';
import { LocalExecutor, type LocalExecutorOptions } from './executor/local-executor.js';
import { missingLaunchTools } from './executor/launch.js';
import { MEMORY_POLL_MS } from './executor/processes.js';
import type { UidRange } from '../protocol/uid-range.js';
import { DEFAULT_SESSION_UIDS, UidPool, uidRangeConflict } from './executor/uids.js';
import type { SessionLimits } from './config.js';
import { resolvePython } from './executor/python.js';
import { nsmlRuntimeDir } from './package-files.js';
import { findBubblewrap } from './executor/sandbox.js';
import { slurmExecutor, type SlurmSettings } from './executor/slurm-setup.js';
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
  /** The uids sandboxed sessions run as under a root server, one each (default DEFAULT_SESSION_UIDS). */
  sessionUids?: UidRange;
  /** false: no cgroups even where the server could make them (limits are then polled). */
  cgroups?: boolean;
  /** Processes and threads one session may have. */
  maxProcesses?: number;
  /** Size of a session's private /tmp. */
  tmpBytes?: number;
  /** Where package installs find packages (`--pip-index-url`, `--pip-find-links`). */
  pip?: ServicesOptions['pip'];
  /** GPUs one team's training sessions may hold at once. */
  maxGpusPerTeam?: number;
  /** Where sessions run: on this machine (default), or as Slurm batch jobs on a cluster's nodes. */
  executor?: 'local' | 'slurm';
  slurm?: SlurmSettings;
  /** Where the one-time admin password and warnings go (stderr). */
  warn: (message: string) => void;
}

export interface RunningServer {
  app: FastifyInstance;
  services: Services;
  url: string;
  close(): Promise<void>;
}

/**
 * What keeps sessions apart beyond the sandbox: under a root server, a uid of its own for each
 * (from a range no account of this machine uses) and cgroups where the kernel has them. A server
 * run by a user runs its sessions as that user, with polled limits.
 */
function isolation(options: ServerOptions, sandboxed: boolean): Pick<LocalExecutorOptions, 'uids' | 'cgroups' | 'cgroupsReason'> {
  if (process.getuid?.() !== 0) return { cgroupsReason: 'the server does not run as root' };
  const range = options.sessionUids ?? DEFAULT_SESSION_UIDS;
  const conflict = sandboxed ? uidRangeConflict(range) : null;
  if (conflict) throw new Error(`${conflict}: pick a free range with --session-uids FIRST-LAST`);
  const quarantine = (uid: number, pids: number[]) =>
    options.warn(`warning: uid ${uid} runs processes this server did not start (${pids.slice(0, 5).join(', ')}; another server with the same --session-uids?): it is no longer handed out`);
  const uids = sandboxed ? new UidPool(range, quarantine) : undefined;
  if (options.cgroups === false) return { uids, cgroupsReason: 'turned off with --no-cgroups' };
  const found = detectCgroups();
  return 'cgroups' in found ? { uids, cgroups: found.cgroups } : { uids, cgroupsReason: found.reason };
}

/**
 * A wheelhouse is read by installs that run as sessions' uids, in the sandbox: a folder only the
 * server can read would fail every install, so it is refused at start, saying how to fix it.
 */
function checkWheelhouse(dir: string | undefined): void {
  if (!dir) return;
  let mode: number;
  try {
    const st = statSync(dir);
    if (!st.isDirectory()) throw new Error('not a folder');
    mode = st.mode;
  } catch (err) {
    throw new Error(`--pip-find-links ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}: give a folder of wheels`);
  }
  if (process.getuid?.() === 0 && (mode & 0o005) !== 0o005) {
    throw new Error(`--pip-find-links ${dir} is not readable by sessions' uids: chmod -R a+rX ${dir}`);
  }
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
  checkWheelhouse(options.pip?.findLinks);
  const executor = new LocalExecutor({
    python, runtimeDir: nsmlRuntimeDir(), bubblewrap, ...isolation(options, bubblewrap !== undefined),
    maxProcesses: options.maxProcesses, tmpBytes: options.tmpBytes,
    // Slurm knows the nodes' GPUs: khd keeps no pool of this machine's beside it.
    gpus: options.executor === 'slurm' ? 0 : (options.gpus ?? detectGpuCount()),
  });
  const slurm = options.executor === 'slurm' ? await slurmExecutor(executor, resolve(options.dataDir), options.slurm ?? {}, options.warn) : undefined;
  const runner = slurm?.executor ?? executor;
  const enforced = runner.enforcement;
  if (enforced.fallbackReason) {
    const asRoot = process.getuid?.() === 0 ? '' : '; run the server as root for kernel-enforced limits and a uid of its own per session';
    options.warn(`warning: no cgroups (${enforced.fallbackReason}): memory is polled every ${MEMORY_POLL_MS} ms and CPUs pinned, which a fast burst can overshoot${asRoot}`);
  }
  const services = createServices({
    dataDir: resolve(options.dataDir),
    executor: runner,
    auth: options.auth,
    heartbeatMs: options.heartbeatMs,
    submitPollMs: options.submitPollMs,
    limits: options.limits,
    // On a cluster, a session can be given at most what its largest node has.
    sessionLimits: slurm ? { maxMemoryBytes: slurm.nodes.memoryBytes, maxCpus: slurm.nodes.cpus, ...options.sessionLimits } : options.sessionLimits,
    warn: options.warn,
    python,
    pip: options.pip,
    maxGpusPerTeam: options.maxGpusPerTeam,
  });
  const admin = await services.auth.bootstrapAdmin(options.adminPassword);
  if (admin?.generated) {
    options.warn(`created user 'admin' with password: ${admin.generated}\n(shown only this once; set KHD_ADMIN_PASSWORD to choose it)`);
  }
  try {
    // Before anything is served: no submit may start on a dataset whose labels are not yet apart,
    // no upload stays stuck reading a body nobody sends.
    await services.datasets.recover();
    await services.uploads.recover();
  } catch (err) {
    await services.close();
    throw err;
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
  // What the default environment holds (khd env ls): known in the background, a session never waits on it.
  void services.environments.start();
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
