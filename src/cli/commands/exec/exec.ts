import { Command } from 'commander';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { examples, parseWhole } from '../../options.js';
import { sessionArg } from '../../session-arg.js';

export function newExecCommand(ctx: Context): Command {
  return new Command('exec')
    .description("run a command inside your running session's sandbox (its uid, files, limits; no network), its output as it comes")
    .argument('<session>', 'USER/DATASET/N')
    .argument('<command...>', 'the command and its arguments, after --')
    .option('--timeout <seconds>', 'stop it after this long (default 60, at most 600)', parseWhole(1), 60)
    .addHelpText('after', examples(['khd exec kim/breast_cancer/3 -- ls -la', 'what it has written'], ['khd exec kim/breast_cancer/3 -- python3 -c "import torch; print(torch.__version__)"']))
    .action(async (session: string, command: string[], opts: { timeout: number }) => {
      if (opts.timeout > 600) throw new UsageError('--timeout is at most 600 seconds: a longer job belongs in the session itself');
      const { runExec } = await import('./run-exec.js');
      await runExec(ctx, sessionArg(session), command, opts.timeout * 1000);
    });
}
