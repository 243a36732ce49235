import { Command } from 'commander';
import type { Context } from '../../context.js';
import { CliError } from '../../errors.js';
import { sessionArg } from '../../session-arg.js';

export function newRmCommand(ctx: Context): Command {
  return new Command('rm')
    .description('remove sessions with their logs and files (glob patterns such as kim/mnist/1*)')
    .argument('<sessions...>', 'USER/DATASET/N or a glob pattern')
    .option('-f, --force', 'stop running sessions first')
    .action((patterns: string[], opts: { force?: boolean }) => runRm(patterns, opts, ctx));
}

export async function runRm(patterns: string[], opts: { force?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const { expandPatterns, isGlob } = await import('./patterns.js');
  const sessions = patterns.some(isGlob) ? await api.calls.sessions({ all: true }) : [];
  const { names, unmatched } = expandPatterns(patterns, sessions);
  const failures: string[] = unmatched.map((p) => `no session matches ${p}`);
  for (const name of names) {
    try {
      await api.calls.remove(sessionArg(name), opts.force ?? false);
      ctx.io.err(`✓ Removed ${name}\n`);
    } catch (err) {
      if ((err as Error).name !== 'ApiError') throw err;
      failures.push((err as Error).message);
    }
  }
  if (failures.length > 0) throw new CliError(failures.join('\nerror: '));
}
