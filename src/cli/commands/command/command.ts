import { Command } from 'commander';
import { examples } from '../../options.js';
import type { Context } from '../../context.js';
import { sessionArg } from '../../session-arg.js';

export function newCommandCommand(ctx: Context): Command {
  return new Command('command')
    .description('the khd command line that starts this session again (from its project folder)')
    .argument('<session>', 'USER/DATASET/N')
    .addHelpText('after', examples(["khd command kim/breast_cancer/3", "khd run -d breast_cancer -e main.py -g 1 --cpus 2 --memory 24G"]))
    .action(async (session: string) => {
      const [api, { commandOf }] = await Promise.all([ctx.api(), import('./command-line.js')]);
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
