import { Command } from 'commander';
import { examples } from '../../options.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { promptFor, readStdin } from '../../prompt.js';

export interface UserAddOptions {
  team?: string;
  admin?: boolean;
  passwordStdin?: boolean;
}

export function newUserCommand(ctx: Context): Command {
  const user = new Command('user').description('manage accounts (admin)');
  user
    .command('add <name>')
    .description('create a participant account (admin only)')
    .option('--team <team>', 'team to join or create (default: the user name)')
    .option('--admin', 'make the user an admin')
    .option('--password-stdin', 'read the password from standard input')
    .addHelpText('after', examples(["khd user add kim --team team-a", "asks kim's password"], ["echo kim-password-1 | khd user add kim --team team-a --password-stdin"]))
    .action((name: string, opts: UserAddOptions) => runUserAdd(name, opts, ctx));
  user
    .command('ls')
    .description('list the accounts and their teams (admin only)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(["khd user ls --json"]))
    .action((opts: { json?: boolean }) => runUserLs(opts, ctx));
  return user;
}

export async function runUserLs(opts: { json?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const users = await api.calls.users();
  if (opts.json) return ctx.io.out(`${JSON.stringify(users, null, 2)}\n`);
  const { renderTable } = await import('../../render/table.js');
  ctx.io.out(renderTable(['User', 'Team', 'Role'], users.map((u) => [u.user, u.team, u.admin ? 'admin' : 'participant'])));
}

export async function runUserAdd(name: string, opts: UserAddOptions, ctx: Context): Promise<void> {
  let password: string;
  if (opts.passwordStdin) password = await readStdin(ctx);
  else {
    password = await promptFor(ctx, 'Password', true);
    if ((await promptFor(ctx, 'Repeat password', true)) !== password) throw new UsageError('the passwords differ');
  }
  const api = await ctx.api();
  const me = await api.calls.addUser({ name, team: opts.team, admin: opts.admin ?? false, password });
  ctx.io.err(`✓ Created user ${me.user} in team ${me.team}${me.admin ? ' (admin)' : ''}\n`);
}
