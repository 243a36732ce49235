import { Command } from 'commander';
import { examples } from '../../options.js';
import { quote } from 'shell-quote';
import { formatSize } from '../../../protocol/sizes.js';
import type { SessionInfo } from '../../../protocol/types.js';
import type { Context } from '../../context.js';
import { sessionArg } from '../../session-arg.js';

/** The khd command line that starts a session like `s` again, as NSML's `nsml command` gave it. */
export function commandOf(s: SessionInfo): string {
  if (s.type !== 'normal') {
    const [, source, checkpoint] = /^(?:test )?submit of (\S+) (\S+)$/.exec(s.memo) ?? [];
    return quote(['khd', 'submit', ...(s.type === 'submit(test)' ? ['-t'] : []), source ?? '?', checkpoint ?? '?']);
  }
  const reserved = s.forkOf ? 4 : 0;
  const args = s.args.slice(0, s.args.length - reserved);
  const resources = ['-g', String(s.gpus), '--cpus', String(s.cpus), '--memory', formatSize(s.memory).replace(/ /g, '').replace(/B$/, '')];
  if (s.forkOf) return quote(['khd', 'fork', s.forkOf.session, '-c', s.forkOf.checkpoint, ...(args.length > 0 ? ['-a', quote(args)] : []), ...resources]);
  return quote([
    'khd', 'run', ...(s.dataset ? ['-d', s.dataset] : []), '-e', s.entry, ...(args.length > 0 ? ['-a', quote(args)] : []), ...resources,
    ...(s.env ? ['--env', s.env] : []),
  ]);
}

export function newCommandCommand(ctx: Context): Command {
  return new Command('command')
    .description('the khd command line that starts this session again (from its project folder)')
    .argument('<session>', 'USER/DATASET/N')
    .addHelpText('after', examples(["khd command kim/breast_cancer/3", "khd run -d breast_cancer -e main.py -g 1 --cpus 2 --memory 24G"]))
    .action(async (session: string) => {
      const api = await ctx.api();
      ctx.io.out(`${commandOf(await api.calls.session(sessionArg(session)))}\n`);
    });
}

export function newGpustatCommand(ctx: Context): Command {
  return new Command('gpustat')
    .description("nvidia-smi's view of a running session's GPUs: utilisation, memory, temperature")
    .argument('<session>', 'USER/DATASET/N')
    .addHelpText('after', examples(["khd gpustat kim/breast_cancer/3"]))
    .action(async (session: string) => {
      const api = await ctx.api();
      ctx.io.out((await api.calls.gpustat(sessionArg(session))).text);
    });
}
