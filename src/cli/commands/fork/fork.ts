import { Command } from 'commander';
import { parseWhole } from '../../options.js';
import type { Context } from '../../context.js';

export interface ForkOptions {
  checkpoint?: string;
  args?: string;
  gpus?: number;
  cpus?: number;
  memory?: string;
  memo?: string;
  interactive?: boolean;
  json?: boolean;
}

export function newForkCommand(ctx: Context): Command {
  return new Command('fork')
    .description("continue a training session from one of its checkpoints: a new session of its code and dataset, given NSML's --pause 1 --iteration CKPT")
    .argument('<session>', "the training session, USER/DATASET/N (yours or a teammate's)")
    .option('-c, --checkpoint <name>', 'the checkpoint to continue from (default: the one saved last)')
    .option('-a, --args <args>', "the code's arguments, quoted as one string (default: the session's)")
    .option('-g, --gpus <n>', "GPUs (default: the session's)", parseWhole(0))
    .option('--cpus <n>', "CPUs (default: the session's)", parseWhole(1))
    .option('--memory <size>', "memory limit, e.g. 24G (default: the session's)")
    .option('-m, --memo <text>', 'a description shown by khd ps (default: fork of SESSION CKPT)')
    .option('-i, --interactive', 'follow the logs and exit with the session’s exit code')
    .option('--json', 'the new session as a JSON line on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  khd fork kim/breast_cancer/3                      # from its latest checkpoint, the same arguments\n  khd fork kim/breast_cancer/3 -c 20 -a "--lr 0.01"  # from checkpoint 20, with a lower learning rate\n\nThe code continues where nsml.paused(scope=locals()) is called: it loads the checkpoint and returns.',
    )
    .action(async (session: string, opts: ForkOptions) => {
      const { runFork } = await import('./run-fork.js');
      await runFork(session, opts, ctx);
    });
}
