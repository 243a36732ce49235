import { Command, CommanderError, Option } from 'commander';
import { EXIT, exitCodeFor } from '../protocol/errors.js';
import { VERSION } from '../protocol/version.js';
import { createContext, type Context, type ContextOverrides } from './context.js';
import { CliError, SilentExit } from './errors.js';
import { newDatasetCommand } from './commands/dataset/dataset.js';
import { newLoginCommand } from './commands/login/login.js';
import { newLogoutCommand } from './commands/logout/logout.js';
import { newLogsCommand } from './commands/logs/logs.js';
import { newMemoCommand } from './commands/memo/memo.js';
import { newModelCommand } from './commands/model/model.js';
import { newPsCommand } from './commands/ps/ps.js';
import { newRmCommand } from './commands/rm/rm.js';
import { newRunCommand } from './commands/run/run.js';
import { newServerCommand } from './commands/server/server.js';
import { newEnvCommand } from './commands/env/env.js';
import { newStopCommand } from './commands/stop/stop.js';
import { newSubmitCommand } from './commands/submit/submit.js';
import { newForkCommand } from './commands/fork/fork.js';
import { newDownloadCommand, newPullCommand } from './commands/pull/pull.js';
import { newPlotCommand } from './commands/plot/plot.js';
import { newExecCommand } from './commands/exec/exec.js';
import { newCommandCommand, newGpustatCommand } from './commands/command/command.js';
import { newCompleteCommand, newCompletionCommand } from './commands/completion/completion.js';
import { newUserCommand } from './commands/user/user.js';
import { newWhoamiCommand } from './commands/whoami/whoami.js';

export function newRootCommand(ctx: Context): Command {
  const program = new Command('khd')
    .description('Train on datasets you cannot download, the NSML way: khd run, khd logs, khd submit')
    .version(VERSION, '-V, --version')
    // NSML's and many tools' -V; -v too, as khd printed its version with it before.
    .addOption(new Option('-v').hideHelp())
    .option('--utc', 'print times in UTC rather than on your clock (also KHD_UTC=1)')
    .showSuggestionAfterError()
    // Options after a command are the command's (`khd server backup --data-dir D`), as commander
    // needs this set at every level above a subcommand that shares an option name.
    .enablePositionalOptions();
  for (const make of [
    newServerCommand, newLoginCommand, newLogoutCommand, newWhoamiCommand, newUserCommand, newDatasetCommand, newEnvCommand,
    newRunCommand, newLogsCommand, newPsCommand, newStopCommand, newRmCommand, newMemoCommand, newModelCommand,
    newSubmitCommand, newForkCommand, newPullCommand, newDownloadCommand, newPlotCommand, newExecCommand, newCommandCommand, newGpustatCommand, newCompletionCommand,
  ]) {
    program.addCommand(make(ctx));
  }
  program.addCommand(newCompleteCommand(ctx, () => program), { hidden: true });
  program.on('option:v', () => (program as unknown as NodeJS.EventEmitter).emit('option:version'));
  program.on('option:utc', () => (ctx.utc = true));
  configureAll(program, ctx);
  return program;
}

/** addCommand() copies no settings, so every command gets the context's streams and no exit(). */
function configureAll(cmd: Command, ctx: Context): void {
  cmd.exitOverride();
  cmd.configureOutput({ writeOut: (t) => ctx.io.out(t), writeErr: (t) => ctx.io.err(t) });
  cmd.commands.forEach((sub) => configureAll(sub, ctx));
}

/** Maps whatever a command threw to a message on stderr and an exit code: the only place that does. */
export function exitCodeOf(err: unknown, ctx: Context, render: ErrorRender = { prefix: 'error:', said: (m) => m }): number {
  if (err instanceof SilentExit) return err.exitCode;
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  const { prefix, said } = render;
  if (err instanceof CliError) {
    ctx.io.err(`${prefix} ${said(err.message)}\n`);
    return err.exitCode;
  }
  // Matched by name: importing the classes would load the HTTP client into every start-up.
  const named = err as Error & { code?: unknown };
  if (named?.name === 'ApiError') {
    ctx.io.err(`${prefix} ${said(named.message)}\n`);
    return exitCodeFor(named.code as never);
  }
  if (named?.name === 'ConnectionError') {
    ctx.io.err(`${prefix} ${named.message}\n`);
    return EXIT.failure;
  }
  ctx.io.err(`${prefix} ${named?.stack ?? String(err)}\n`);
  return EXIT.failure;
}

export async function main(argv: string[], overrides: ContextOverrides = {}): Promise<number> {
  const ctx = createContext(overrides);
  const program = newRootCommand(ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    return exitCodeOf(err, ctx, await errorRender(ctx));
  }
}

/** How an error is said: `error:` (red where colour is on), the server's times on the user's clock. */
export interface ErrorRender {
  prefix: string;
  said(message: string): string;
}

/** Loaded only once there is an error to say: no command's start-up pays for chalk. */
async function errorRender(ctx: Context): Promise<ErrorRender> {
  const [{ errorPrefix }, { localTimes }] = await Promise.all([import('./render/colors.js'), import('../protocol/format.js')]);
  return { prefix: errorPrefix(ctx.io), said: (message) => localTimes(message, ctx.clock(), ctx.utc) };
}
