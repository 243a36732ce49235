import { Command } from 'commander';
import { examples } from '../../options.js';
import type { Context } from '../../context.js';

export function newLogoutCommand(ctx: Context): Command {
  return new Command('logout')
    .description('revoke the token on the server and forget it here')
    .option('--server <url>', 'server URL')
    .addHelpText('after', examples(["khd logout"]))
    .action((opts: { server?: string }) => runLogout(opts, ctx));
}

export async function runLogout(opts: { server?: string }, ctx: Context): Promise<void> {
  const server = ctx.config.server(opts.server);
  const token = await ctx.credentials.get(server);
  if (!token) {
    ctx.io.err(`not logged in to ${server}: nothing to do\n`);
    return;
  }
  try {
    const api = await ctx.api(server);
    await api.calls.logout();
  } catch (err) {
    // The local copy goes regardless; say that the server could not be told.
    ctx.io.err(`warning: could not revoke the token on the server (${(err as Error).message})\n`);
  }
  await ctx.credentials.delete(server);
  ctx.io.err(`✓ Logged out of ${server}\n`);
}
