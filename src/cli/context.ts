import { Config } from './config.js';
import { Credentials } from './credentials.js';
import { NotLoggedInError } from './errors.js';
import { systemIO, type IOStreams } from './iostreams.js';
import type { ApiClient } from './api/client.js';
import type { Resources } from './api/resources.js';

/** An authenticated connection: the raw client (for streams) and its resources. */
export interface Api {
  client: ApiClient;
  calls: Resources;
}

/** Everything a command may touch; commands never reach for process.* or Date.now themselves. */
export interface Context {
  io: IOStreams;
  env: NodeJS.ProcessEnv;
  cwd: string;
  config: Config;
  credentials: Credentials;
  clock: () => number;
  /** Times in UTC rather than on the user's clock (`khd --utc`, KHD_UTC=1). */
  utc: boolean;
  sleep: (ms: number) => Promise<void>;
  /** A client for `server` (default: the configured one) with the stored token; throws when there is none. */
  api(server?: string): Promise<Api>;
  /** A client without a token, for login. */
  anonymousApi(server: string): Promise<Api>;
  /** Registers what Ctrl-C must do before the process exits; returns the unregister. */
  onInterrupt(handler: () => Promise<void> | void): () => void;
}

export interface ContextOverrides {
  io?: IOStreams;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onInterrupt?: Context['onInterrupt'];
}

export function createContext(overrides: ContextOverrides = {}): Context {
  const env = overrides.env ?? process.env;
  const config = new Config(env);
  const credentials = new Credentials(config, env);
  const connect = async (server: string, token: string | undefined): Promise<Api> => {
    // The HTTP client is loaded only by commands that talk to the server.
    const [{ createApiClient }, { resources }] = await Promise.all([import('./api/client.js'), import('./api/resources.js')]);
    const client = createApiClient(server, token);
    return { client, calls: resources(client) };
  };
  return {
    io: overrides.io ?? systemIO(env),
    env,
    cwd: overrides.cwd ?? process.cwd(),
    config,
    credentials,
    clock: overrides.clock ?? Date.now,
    utc: env.KHD_UTC === '1',
    sleep: overrides.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    async api(serverFlag?: string) {
      const server = config.server(serverFlag);
      const token = await credentials.get(server);
      if (!token) throw new NotLoggedInError(server);
      return connect(server, token);
    },
    anonymousApi: (server) => connect(server, undefined),
    onInterrupt: overrides.onInterrupt ?? processInterrupts,
  };
}

const handlers = new Set<() => Promise<void> | void>();

/** Ctrl-C runs the registered clean-ups (once), then exits 130; with none registered, exits at once. */
function processInterrupts(handler: () => Promise<void> | void): () => void {
  handlers.add(handler);
  if (handlers.size === 1) process.on('SIGINT', onSigint);
  return () => {
    handlers.delete(handler);
    if (handlers.size === 0) process.off('SIGINT', onSigint);
  };
}

let interrupted = false;
async function onSigint(): Promise<void> {
  if (interrupted) process.exit(130);
  interrupted = true;
  await Promise.allSettled([...handlers].map((h) => h()));
  process.exit(130);
}
