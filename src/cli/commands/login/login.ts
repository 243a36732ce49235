import { Command } from 'commander';
import { examples } from '../../options.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { promptFor, readStdin } from '../../prompt.js';

export interface LoginOptions {
  server?: string;
  user?: string;
  passwordStdin?: boolean;
}

export function newLoginCommand(ctx: Context): Command {
  return new Command('login')
    .description('log in to a khd server and store the token (OS keychain, else a 0600 file)')
    .option('--server <url>', 'server URL (default: KHD_SERVER, the saved one, or http://127.0.0.1:8757)')
    .option('-u, --user <name>', 'user name (prompted for when missing)')
    .option('--password-stdin', 'read the password from standard input')
    .addHelpText('after', examples(["khd login -u kim", "asks the password"], ["echo \"$PASSWORD\" | khd login --server http://platform:8757 -u kim --password-stdin", "in a script"]))
    .action((opts: LoginOptions) => runLogin(opts, ctx));
}

export async function runLogin(opts: LoginOptions, ctx: Context): Promise<void> {
  const server = ctx.config.server(opts.server);
  const user = opts.user ?? (await promptFor(ctx, 'User', false));
  const password = opts.passwordStdin ? await readStdin(ctx) : await promptFor(ctx, 'Password', true);
  if (!password) throw new UsageError('the password is empty');
  const api = await ctx.anonymousApi(server);
  const session = await api.calls.login(user, password);
  const where = await ctx.credentials.set(server, session.token);
  await ctx.config.write({ server, user: session.me.user, credentialStore: where.kind });
  ctx.io.err(`✓ Logged in to ${server} as ${session.me.user} (team ${session.me.team})\n`);
  if (where.kind === 'keyring') ctx.io.err('  token stored in the OS keychain\n');
  else ctx.io.err(`  token stored in ${where.path} (mode 0600)${where.why ? `: ${where.why}` : ''}\n`);
  if (ctx.env.KHD_TOKEN) ctx.io.err('note: KHD_TOKEN is set and overrides the stored token; unset it to use this login\n');
}
