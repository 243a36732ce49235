import type { Command, Option } from 'commander';
import type { Context } from '../../context.js';

/** How long completion waits for the server: a shell must never hang on a Tab. */
const SERVER_WAIT_MS = 1500;

type Kind = 'session' | 'dataset' | 'checkpoint' | 'environment' | 'none';

/** What a positional argument or an option value names, by its name in the command's definition. */
function kindOf(name: string): Kind {
  if (/^sessions?$/.test(name)) return 'session';
  if (/^checkpoints?$|^ckpt$/.test(name)) return 'checkpoint';
  if (name === 'dataset') return 'dataset';
  if (name === 'env' || name === 'environment') return 'environment';
  return 'none';
}

/** The argument `name` names, for each command: `khd dataset board <name>` is a dataset. */
function argumentKind(command: Command, name: string): Kind {
  if (name === 'name' && command.parent?.name() === 'dataset') return 'dataset';
  return kindOf(name);
}

const visible = (c: Command) => c.name() !== '__complete' && !(c as unknown as { _hidden?: boolean })._hidden;

/**
 * The candidates for the last of `words` (what is typed after `khd`, the last one partial):
 * subcommands, the command's flags, the choices of a flag, and from the server (the user's own
 * view) session names, dataset names, checkpoints of the session named before, environments.
 * A server that does not answer in time, or a user not logged in, gives none of those.
 */
export async function candidates(ctx: Context, root: Command, words: string[]): Promise<string[]> {
  const typed = words.at(-1) ?? '';
  let command = root;
  const positionals: string[] = [];
  let pendingOption: Option | undefined;
  for (const word of words.slice(0, -1)) {
    if (pendingOption) {
      pendingOption = undefined;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub && positionals.length === 0) {
      command = sub;
      continue;
    }
    if (word.startsWith('-')) {
      const option = command.options.find((o) => o.long === word || o.short === word);
      if (option && (option.required || option.optional)) pendingOption = option;
      continue;
    }
    positionals.push(word);
  }
  const startsWith = (list: string[]) => list.filter((c) => c.startsWith(typed));
  if (pendingOption) {
    if (pendingOption.argChoices) return startsWith(pendingOption.argChoices);
    // By what the option holds (`-d, --dataset <name>`: a dataset).
    return startsWith(await fromServer(ctx, kindOf(pendingOption.attributeName()), positionals));
  }
  if (typed.startsWith('-')) {
    return startsWith(command.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f))));
  }
  const subs = command.commands.filter(visible);
  if (subs.length > 0 && positionals.length === 0) return startsWith(subs.map((c) => c.name()));
  const args = command.registeredArguments;
  const arg = args[Math.min(positionals.length, args.length - 1)];
  if (!arg || (positionals.length >= args.length && !arg.variadic)) return [];
  if (arg.argChoices) return startsWith(arg.argChoices);
  return startsWith(await fromServer(ctx, argumentKind(command, arg.name()), positionals));
}

/** Names of `kind` the server shows this user; none when it does not answer in time. */
async function fromServer(ctx: Context, kind: Kind, positionals: string[]): Promise<string[]> {
  if (kind === 'none') return [];
  const work = (async () => {
    const api = await ctx.api();
    switch (kind) {
      case 'session':
        return (await api.calls.sessions({ all: true, limit: 500 })).map((s) => s.name);
      case 'dataset':
        return (await api.calls.datasets()).map((d) => d.name);
      case 'environment':
        return (await api.calls.environments()).map((e) => e.name);
      case 'checkpoint': {
        const session = positionals.find((p) => p.split('/').length === 3);
        if (!session) return [];
        const { sessionArg } = await import('../../session-arg.js');
        return (await api.calls.models(sessionArg(session))).map((m) => m.checkpoint);
      }
    }
  })();
  const timeout = new Promise<string[]>((resolve) => setTimeout(() => resolve([]), SERVER_WAIT_MS).unref());
  return Promise.race([work.catch(() => []), timeout]);
}
