import { Command } from 'commander';
import type { Context } from '../../context.js';
import { collect, examples } from '../../options.js';

export interface EnvAddOptions {
  python: string;
  alias?: string[];
  default?: boolean;
  message?: string;
}


export function newEnvCommand(ctx: Context): Command {
  const env = new Command('env').description('environments: the Python stacks sessions run on (everyone lists; admins add and remove)');
  env
    .command('add <name>')
    .description('register an interpreter (a venv, a conda env, a system Python) as an environment (admin only)')
    .requiredOption('--python <path>', 'its interpreter, e.g. /opt/envs/torch-2.1/bin/python')
    .option('--alias <pattern>', "an NSML image name, or a glob of them, that chooses it: 'nsml/ml:cuda9*' (repeatable)", collect)
    .option('--default', 'sessions whose project names no image run on it')
    .option('-m, --message <description>', 'a description khd env ls shows')
    .addHelpText('after', examples(["khd env add torch --python /opt/torch/bin/python3 --alias 'torch*' -m 'PyTorch 2'", "the #nsml: torch line picks it"]))
    .action(async (name: string, opts: EnvAddOptions) => (await import('./env-run.js')).runEnvAdd(name, opts, ctx));
  env
    .command('ls')
    .description('list the environments: aliases, Python, main packages, GPUs')
    .option('--layers', "admins: the cached package layers with their sizes, and the system packages projects asked for that this server lacks")
    .option('--json', 'print JSON')
    .addHelpText('after', examples(["khd env ls --layers", "with the cached package layers"]))
    .action(async (opts: { json?: boolean; layers?: boolean }) => (await import('./env-run.js')).runEnvLs(opts, ctx));
  env
    .command('rm <name>')
    .description('remove an environment (admin only); sessions that chose it by alias run on the default')
    .addHelpText('after', examples(["khd env rm torch"]))
    .action(async (name: string) => (await import('./env-run.js')).runEnvRm(name, ctx));
  return env;
}
