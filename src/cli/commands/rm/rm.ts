import { Command } from 'commander';
import { examples } from '../../options.js';
import type { Context } from '../../context.js';
import { CliError } from '../../errors.js';
import { sessionArg } from '../../session-arg.js';

export function newRmCommand(ctx: Context): Command {
  return new Command('rm')
    .description('remove sessions with their logs and files (glob patterns such as kim/mnist/1*)')
    .argument('<sessions...>', 'USER/DATASET/N or a glob pattern')
    .option('-f, --force', 'stop running sessions first')
    .addHelpText('after', examples(["khd rm kim/breast_cancer/3", "an ended session"], ["khd rm -f 'kim/mnist/1*'", "running ones too, by pattern"]))
    .action((patterns: string[], opts: { force?: boolean }) => runRm(patterns, opts, ctx));
}

export async function runRm(patterns: string[], opts: { force?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const { expandPatterns, isGlob } = await import('./patterns.js');
  // A pattern matches only the user's own sessions: `ps` lists the team's, which teammates may
  // read and submit but not remove.
  let sessions: Awaited<ReturnType<typeof api.calls.sessions>> = [];
  if (patterns.some(isGlob)) {
    const [all, me] = await Promise.all([api.calls.sessions({ all: true }), api.calls.me()]);
    sessions = me.admin ? all : all.filter((s) => s.user === me.user);
  }
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
