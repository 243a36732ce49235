import { Command } from 'commander';
import { examples } from '../../options.js';
import type { Context } from '../../context.js';
import { CliError } from '../../errors.js';
import { summaryText, timeAgo } from '../../../protocol/format.js';
import { sessionArg } from '../../session-arg.js';
import { addModelPull } from '../pull/pull.js';

export function newModelCommand(ctx: Context): Command {
  const model = new Command('model').description("a session's checkpoints");
  model
    .command('ls <session>')
    .description('list checkpoints: Checkpoint, Last Modified, Elapsed, Summary, Size')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(["khd model ls kim/breast_cancer/3"]))
    .action((session: string, opts: { json?: boolean }) => runModelLs(session, opts, ctx));
  model
    .command('rm <session> <checkpoints...>')
    .description('remove checkpoints (glob patterns such as epoch*)')
    .addHelpText('after', examples(["khd model rm kim/breast_cancer/3 'epoch*'", "by pattern"]))
    .action((session: string, patterns: string[]) => runModelRm(session, patterns, ctx));
  addModelPull(model, ctx);
  return model;
}

export async function runModelLs(session: string, opts: { json?: boolean }, ctx: Context): Promise<void> {
  const name = sessionArg(session);
  const api = await ctx.api();
  const models = await api.calls.models(name);
  if (opts.json) return ctx.io.out(`${JSON.stringify(models, null, 2)}\n`);
  if (models.length === 0) return ctx.io.err(`${session} has no checkpoints: nsml.save(name) in the code makes one\n`);
  const [{ renderTable }, { formatSize }] = await Promise.all([import('../../render/table.js'), import('../../../protocol/sizes.js')]);
  const now = ctx.clock();
  ctx.io.out(
    renderTable(
      ['Checkpoint', 'Last Modified', 'Elapsed', 'Summary', 'Size'],
      models.map((m) => [m.checkpoint, timeAgo(m.lastModified, now), m.elapsed === null ? '' : `${m.elapsed} s`, summaryText(m.summary), formatSize(m.size)]),
    ),
  );
}

export async function runModelRm(session: string, patterns: string[], ctx: Context): Promise<void> {
  const name = sessionArg(session);
  const api = await ctx.api();
  const { default: picomatch } = await import('picomatch');
  const names = (await api.calls.models(name)).map((m) => m.checkpoint);
  const failures: string[] = [];
  const chosen = new Set<string>();
  for (const pattern of patterns) {
    const match = picomatch(pattern);
    const hits = names.filter((n) => match(n));
    if (hits.length === 0) failures.push(`${session} has no checkpoint matching '${pattern}': see khd model ls ${session}`);
    hits.forEach((h) => chosen.add(h));
  }
  for (const checkpoint of chosen) {
    await api.calls.removeModel(name, checkpoint);
    ctx.io.err(`✓ Removed checkpoint ${checkpoint} of ${session}\n`);
  }
  if (failures.length > 0) throw new CliError(failures.join('\nerror: '));
}
