import { Command } from 'commander';
import type { Context } from '../../context.js';

export interface SubmitOptions {
  test?: boolean;
}

export function newSubmitCommand(ctx: Context): Command {
  return new Command('submit')
    .description("evaluate a checkpoint on the dataset's hidden test set and record the score (-t: public sample, not counted)")
    .argument('<session>', 'the training session, USER/DATASET/N')
    .argument('[checkpoint]', 'the checkpoint (see khd model ls)', 'best')
    .option('-t, --test', 'test submit on the public sample: shows your output, does not count')
    .addHelpText('after', '\nExamples:\n  khd submit -t kim/breast_cancer/3          # its best checkpoint, on the public sample\n  khd submit kim/breast_cancer/3 30          # checkpoint 30, scored on the hidden test set')
    .action(async (session: string, checkpoint: string, opts: SubmitOptions) => {
      const { runSubmit } = await import('./run-submit.js');
      await runSubmit(session, checkpoint, opts, ctx);
    });
}
