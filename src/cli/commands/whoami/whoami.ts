import { Command } from 'commander';
import { examples } from '../../options.js';
import type { Context } from '../../context.js';

export function newWhoamiCommand(ctx: Context): Command {
  return new Command('whoami')
    .description('show the logged-in user, team and server')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(["khd whoami", "kim (team team-a) at http://127.0.0.1:8757"]))
    .action((opts: { json?: boolean }) => runWhoami(opts, ctx));
}

export async function runWhoami(opts: { json?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const me = await api.calls.me();
  if (opts.json) ctx.io.out(`${JSON.stringify({ ...me, server: api.client.server })}\n`);
  else ctx.io.out(`${me.user} (team ${me.team}${me.admin ? ', admin' : ''}) at ${api.client.server}\n`);
}
