import { Command } from 'commander';
import { examples } from '../../options.js';
import type { Context } from '../../context.js';
import { sessionArg } from '../../session-arg.js';
import { statusText } from '../../../protocol/format.js';

export function newStopCommand(ctx: Context): Command {
  return new Command('stop')
    .description('stop a session (SIGTERM, then SIGKILL after a grace period)')
    .argument('<session>', 'USER/DATASET/N')
    .addHelpText('after', examples(["khd stop kim/breast_cancer/3"]))
    .action((session: string) => runStop(session, ctx));
}

export async function runStop(session: string, ctx: Context): Promise<void> {
  const name = sessionArg(session);
  const api = await ctx.api();
  const before = await api.calls.session(name);
  if (before.status !== 'Queued' && before.status !== 'Running') {
    ctx.io.err(`${before.name} is already ${statusText(before)}: nothing to stop\n`);
    return;
  }
  const after = await api.calls.stop(name);
  if (after.status === 'Stopped') ctx.io.err(`✓ Stopped ${after.name}\n`);
  else ctx.io.err(`✓ Stopping ${after.name}: it was sent SIGTERM, and gets SIGKILL if it does not exit\n`);
}
