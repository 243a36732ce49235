import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { choice, durationOption, parseWhole, sizeOption, examples } from '../../options.js';
import { enforcedLine } from '../../../protocol/format.js';
import { DEFAULT_HOST, DEFAULT_PORT } from '../../../protocol/types.js';
import { parseUidRange, type UidRange } from '../../../protocol/uid-range.js';
import type { Context } from '../../context.js';
import { CliError } from '../../errors.js';

export interface ServerCommandOptions {
  host: string;
  port: number;
  dataDir?: string;
  gpus?: number;
  python?: string;
  sandbox: boolean;
  sessionTimeout?: number;
  maxLogSize?: number;
  maxDisk?: number;
  maxFiles?: number;
  maxProcesses?: number;
  tmpSize?: number;
  sessionUids?: UidRange;
  cgroups: boolean;
  pipIndexUrl?: string;
  pipFindLinks?: string;
  maxGpusPerTeam?: number;
  executor: 'local' | 'slurm';
  slurmPartition?: string;
  slurmAccount?: string;
  slurmQos?: string;
  /** From --config: sbatch options for every job. */
  slurmSbatchArgs?: string[];
  config?: string;
}

function uidRangeOption(value: string): UidRange {
  try {
    return parseUidRange(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function defaultDataDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(base, 'khd');
}

export function newServerCommand(ctx: Context): Command {
  // `khd server backup --data-dir D`: the option after the subcommand is the subcommand's.
  const server = new Command('server').enablePositionalOptions();
  server
    .command('backup <dest>')
    .description("copy a data dir while its server runs: the database (SQLite's online backup) and the files it names")
    .option('--data-dir <dir>', 'the data dir to copy (default: $XDG_DATA_HOME/khd)')
    .addHelpText('after', examples(["khd server backup /backups/khd-2026-12-03 --data-dir /srv/khd", "a consistent copy while the server runs"]))
    .action(async (dest: string, opts: { dataDir?: string }) => {
      const { runBackup } = await import('./backup.js');
      await runBackup(dest, opts.dataDir ?? defaultDataDir(ctx.env), ctx);
    });
  return server
    .description('run the session server in the foreground (embedded SQLite, local sandboxed sessions)')
    .option('--host <host>', 'address to listen on', DEFAULT_HOST)
    .option('--port <port>', 'port to listen on (0 picks a free one)', parseWhole(0), DEFAULT_PORT)
    .option('--data-dir <dir>', 'where the database, uploads, logs and datasets live (default: $XDG_DATA_HOME/khd)')
    .option('--gpus <n>', 'GPUs to hand out (default: what nvidia-smi -L lists)', parseWhole(0))
    .option('--python <path>', 'the Python interpreter sessions run (default: python3 on PATH)')
    .option('--no-sandbox', 'run sessions as plain processes (when bubblewrap is not available)')
    .option('--session-timeout <duration>', 'wall-clock limit of one session, e.g. 12h (default 3d)', durationOption)
    .option('--max-log-size <size>', 'log one session may write before it is stopped (default 64M)', sizeOption)
    .option('--max-disk <size>', "disk one session's work folder, checkpoints and events may fill (default 20G)", sizeOption)
    .option('--max-files <n>', "files and folders one session's work folder, checkpoints and events may hold (default 1000000)", parseWhole(1))
    .option('--max-processes <n>', 'processes and threads one session may have (default 1024)', parseWhole(1))
    .option('--tmp-size <size>', "size of a session's private /tmp (default 1G)", sizeOption)
    .option('--session-uids <first-last>', 'uids sessions run as, one each, when the server runs as root (default 70000-70999)', uidRangeOption)
    .option('--no-cgroups', 'poll memory and processes instead of making cgroups (the kernel enforces limits only with them)')
    .option('--pip-index-url <url>', "the package index projects' requirements are installed from (the install then has network; sessions never do)")
    .option('--pip-find-links <dir>', "a folder of wheels projects' requirements are installed from, offline")
    .option('--executor <kind>', 'where sessions run: local (this machine) or slurm (batch jobs; the data dir must be on a filesystem the nodes share)', choice('--executor', ['local', 'slurm'] as const), 'local')
    .option('--slurm-partition <p>', 'the Slurm partition sessions go to')
    .option('--slurm-account <a>', 'the Slurm account jobs are charged to')
    .option('--slurm-qos <q>', 'the Slurm QOS of the jobs')
    .option('--max-gpus-per-team <n>', "GPUs one team's training sessions may hold at once (KHD2020: 1); more wait, saying why", parseWhole(1))
    .option('--config <file>', 'settings from a JSON file: the flags\' names without -- as keys, and "slurm-sbatch-args" (flags given here win)')
    .addHelpText('after', examples(["khd server --data-dir /srv/khd", "on this machine, port 8757; the admin's password is printed once"], ["khd server --executor slurm --slurm-partition v100 --max-gpus-per-team 1", "sessions as Slurm jobs"], ["khd server --config /etc/khd/server.json", "the same settings from a file"]))
    .action(async (opts: ServerCommandOptions, command: Command) => {
      const { applyConfigFile } = await import('./config-file.js');
      const more = opts.config ? applyConfigFile(command, opts.config) : {};
      await runServer({ ...(command.opts() as ServerCommandOptions), ...more }, ctx);
    });
}

/** A start-up failure as a sentence: they are this machine's problems, not khd's, so no stack. */
export function startFailure(err: NodeJS.ErrnoException, host: string, port: number, dataDir: string): CliError {
  const where = `${host}:${port}`;
  switch (err.syscall === 'listen' ? err.code : undefined) {
    case 'EADDRINUSE':
      return new CliError(`${where} is already in use: stop what listens there, or pick another --port`);
    case 'EACCES':
      return new CliError(`no permission to listen on ${where}: use a port above 1023`);
    case 'EADDRNOTAVAIL':
      return new CliError(`${host} is not an address of this machine: pass --host with one of its addresses`);
  }
  if (err.path) return new CliError(`cannot use the data dir ${dataDir} (${err.code} on ${err.path}): pick another with --data-dir`);
  return new CliError(`the server could not start: ${err.message}`);
}

export async function runServer(opts: ServerCommandOptions, ctx: Context): Promise<void> {
  const { startServer } = await import('../../../server/main.js');
  const dataDir = opts.dataDir ?? defaultDataDir(ctx.env);
  const server = await startServer({
    host: opts.host,
    port: opts.port,
    dataDir,
    gpus: opts.gpus,
    python: opts.python,
    noSandbox: !opts.sandbox,
    sessionLimits: {
      ...(opts.sessionTimeout ? { maxWallMs: opts.sessionTimeout } : {}),
      ...(opts.maxLogSize ? { maxLogBytes: opts.maxLogSize } : {}),
      ...(opts.maxDisk ? { maxDiskBytes: opts.maxDisk } : {}),
      ...(opts.maxFiles ? { maxFiles: opts.maxFiles } : {}),
    },
    maxProcesses: opts.maxProcesses,
    tmpBytes: opts.tmpSize,
    sessionUids: opts.sessionUids,
    cgroups: opts.cgroups,
    maxGpusPerTeam: opts.maxGpusPerTeam,
    executor: opts.executor,
    slurm: { partition: opts.slurmPartition, account: opts.slurmAccount, qos: opts.slurmQos, sbatchArgs: opts.slurmSbatchArgs },
    pip: { indexUrl: opts.pipIndexUrl, findLinks: opts.pipFindLinks ? resolve(ctx.cwd, opts.pipFindLinks) : undefined },
    adminPassword: ctx.env.KHD_ADMIN_PASSWORD || undefined,
    warn: (message) => ctx.io.err(`${message}\n`),
  }).catch((err: NodeJS.ErrnoException) => {
    throw startFailure(err, opts.host, opts.port, dataDir);
  });
  // Before the listening line, which tools wait for: by then these have been written.
  const enforced = server.services.info.enforcement;
  ctx.io.err(`session limits: ${enforcedLine(enforced)}\n`);
  ctx.io.err(`the dashboard: ${server.url}/ (the same accounts as khd login)\n`);
  ctx.io.out(`listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    let closing = false;
    const shutdown = (signal: NodeJS.Signals) => {
      if (closing) {
        ctx.io.err(`${signal} again: exiting now\n`);
        process.exit(130);
      }
      closing = true;
      ctx.io.err(
        opts.executor === 'slurm'
          ? `${signal}: shutting down; sessions' Slurm jobs go on, and the next start follows them again…\n`
          : `${signal}: stopping sessions and shutting down…\n`,
      );
      void server.close().then(resolve);
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  });
  ctx.io.err('server stopped\n');
}
