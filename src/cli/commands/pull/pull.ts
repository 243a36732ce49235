import { resolve } from 'node:path';
import { Command } from 'commander';
import { sessionPath, type SessionName } from '../../../protocol/session-name.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { sessionArg } from '../../session-arg.js';

/** Where a download goes when no folder is named: `kim_mnist_3` (and a suffix), in the current folder. */
function defaultDest(ctx: Context, name: SessionName, suffix: string): string {
  return resolve(ctx.cwd, `${name.user}_${name.dataset}_${name.number}${suffix}`);
}

async function fetchInto(ctx: Context, url: string, params: Record<string, string | undefined>, dest: string): Promise<void> {
  const [api, { downloadInto, sayDownloaded }] = await Promise.all([ctx.api(), import('../../api/download.js')]);
  sayDownloaded(ctx, await downloadInto(ctx, api.client, url, params, dest), dest);
}

export function newPullCommand(ctx: Context): Command {
  return new Command('pull')
    .description("a session's code, as it was uploaded (yours or a teammate's training session)")
    .argument('<session>', 'USER/DATASET/N')
    .argument('[dest]', 'a folder that does not exist yet (default: ./USER_DATASET_N)')
    .addHelpText('after', '\nExample:\n  khd pull kim/breast_cancer/3            # into ./kim_breast_cancer_3')
    .action(async (session: string, dest: string | undefined) => {
      const name = sessionArg(session);
      await fetchInto(ctx, `${sessionPath(name)}/code`, {}, dest ? resolve(ctx.cwd, dest) : defaultDest(ctx, name, ''));
    });
}

export function newDownloadCommand(ctx: Context): Command {
  return new Command('download')
    .description("what a training session wrote in its folder (its outputs, logs of its own), or one file or folder of it")
    .argument('<session>', 'USER/DATASET/N')
    .argument('[dest]', 'a folder that does not exist yet (default: ./USER_DATASET_N_files)')
    .option('-s, --source <path>', "a file or folder inside the session's folder (default: all of it)")
    .addHelpText('after', '\nExamples:\n  khd download kim/breast_cancer/3                     # its whole folder\n  khd download kim/breast_cancer/3 out -s results.csv  # one file, into ./out')
    .action(async (session: string, dest: string | undefined, opts: { source?: string }) => {
      const name = sessionArg(session);
      if (opts.source !== undefined && !opts.source.trim()) throw new UsageError("-s needs a path inside the session's folder, e.g. -s results.csv");
      await fetchInto(ctx, `${sessionPath(name)}/files`, { path: opts.source }, dest ? resolve(ctx.cwd, dest) : defaultDest(ctx, name, '_files'));
    });
}

/** `khd model pull`, added to the model command. */
export function addModelPull(model: Command, ctx: Context): void {
  model
    .command('pull <session> <checkpoint> [dest]')
    .description('a checkpoint, as the code saved it (where the dataset allows it)')
    .addHelpText('after', '\nExample:\n  khd model pull kim/breast_cancer/3 best  # into ./kim_breast_cancer_3_best')
    .action(async (session: string, checkpoint: string, dest: string | undefined) => {
      const name = sessionArg(session);
      if (!checkpoint.trim()) throw new UsageError(`give the checkpoint, e.g. best (khd model ls ${session} lists them)`);
      const url = `${sessionPath(name)}/models/${encodeURIComponent(checkpoint)}/files`;
      await fetchInto(ctx, url, {}, dest ? resolve(ctx.cwd, dest) : defaultDest(ctx, name, `_${checkpoint}`));
    });
}
