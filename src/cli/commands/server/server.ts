import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_HOST, DEFAULT_PORT } from '../../../protocol/types.js';
import type { Context } from '../../context.js';

export interface ServerCommandOptions {
  host: string;
  port: number;
  dataDir?: string;
  gpus?: number;
  python?: string;
  sandbox: boolean;
}

export function defaultDataDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(base, 'khd');
}

export function parseWhole(min: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}`);
    return Number(text);
  };
}

export function newServerCommand(ctx: Context): Command {
  return new Command('server')
    .description('run the session server in the foreground (embedded SQLite, local sandboxed sessions)')
    .option('--host <host>', 'address to listen on', DEFAULT_HOST)
    .option('--port <port>', 'port to listen on (0 picks a free one)', parseWhole(0), DEFAULT_PORT)
    .option('--data-dir <dir>', 'where the database, uploads, logs and datasets live (default: $XDG_DATA_HOME/khd)')
    .option('--gpus <n>', 'GPUs to hand out (default: what nvidia-smi -L lists)', parseWhole(0))
    .option('--python <path>', 'the Python interpreter sessions run (default: python3 on PATH)')
    .option('--no-sandbox', 'run sessions as plain processes (when bubblewrap is not available)')
    .action((opts: ServerCommandOptions) => runServer(opts, ctx));
}

export async function runServer(opts: ServerCommandOptions, ctx: Context): Promise<void> {
  const { startServer } = await import('../../../server/main.js');
  const server = await startServer({
    host: opts.host,
    port: opts.port,
    dataDir: opts.dataDir ?? defaultDataDir(ctx.env),
    gpus: opts.gpus,
    python: opts.python,
    noSandbox: !opts.sandbox,
    adminPassword: ctx.env.KHD_ADMIN_PASSWORD || undefined,
    warn: (message) => ctx.io.err(`${message}\n`),
  });
  ctx.io.out(`listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    let closing = false;
    const shutdown = (signal: NodeJS.Signals) => {
      if (closing) {
        ctx.io.err(`${signal} again: exiting now\n`);
        process.exit(130);
      }
      closing = true;
      ctx.io.err(`${signal}: stopping sessions and shutting down…\n`);
      void server.close().then(resolve);
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  });
  ctx.io.err('server stopped\n');
}
