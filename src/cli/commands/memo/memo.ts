import { Command } from 'commander';
import { examples } from '../../options.js';
import type { Context } from '../../context.js';
import { sessionArg } from '../../session-arg.js';

export function newMemoCommand(ctx: Context): Command {
  return new Command('memo')
    .description("set a session's description")
    .argument('<session>', 'USER/DATASET/N')
    .argument('<text>', 'the description (quote it)')
    .addHelpText('after', examples(["khd memo kim/breast_cancer/3 'lr 0.01, 30 epochs'"]))
    .action((session: string, text: string) => runMemo(session, text, ctx));
}

export async function runMemo(session: string, text: string, ctx: Context): Promise<void> {
  const name = sessionArg(session);
  const api = await ctx.api();
  const info = await api.calls.memo(name, text);
  ctx.io.err(`✓ Memo of ${info.name} set\n`);
}
