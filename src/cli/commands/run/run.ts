import { Command } from 'commander';
import type { Context } from '../../context.js';
import { parseWhole, examples } from '../../options.js';

export interface RunOptions {
  dataset?: string;
  entry: string;
  args?: string;
  gpus?: number;
  cpus: number;
  memory: string;
  shmSize: string;
  memo?: string;
  interactive?: boolean;
  dryRun?: boolean;
  showLimits?: boolean;
  showDefaultNsmlignore?: boolean;
  json?: boolean;
  env?: string;
}

export const DEFAULT_CPUS = 2;
export const DEFAULT_MEMORY = '24G';
export const DEFAULT_SHM_SIZE = '1G';

export function newRunCommand(ctx: Context): Command {
  return new Command('run')
    .description('package this folder (honouring .nsmlignore), upload it and start a session')
    .option('-d, --dataset <name>', 'dataset to train on (mounted read-only at DATASET_PATH)')
    .option('-e, --entry <file>', 'the Python file to run', 'main.py')
    .option('-a, --args <args>', 'arguments for the entry file, quoted as one string')
    .option('-g, --gpus <n>', 'GPUs (default: 1 where the server has GPUs, else 0)', parseWhole(0))
    .option('-c, --cpus <n>', 'CPUs', parseWhole(1), DEFAULT_CPUS)
    .option('--memory <size>', 'memory limit, e.g. 24G', DEFAULT_MEMORY)
    .option('--shm-size <size>', 'shared memory size, e.g. 1G', DEFAULT_SHM_SIZE)
    .option('-m, --memo <text>', 'a description shown by khd ps')
    .option('--env <name>', 'the environment to run on (khd env ls), instead of the one the #nsml: line of setup.py or requirements.txt chooses')
    .option('-i, --interactive', 'follow the logs and exit with the session’s exit code')
    .option('--dry-run', 'list what would be sent and what is left out, then stop')
    .option('--show-limits', 'print the server’s upload and session limits')
    .option('--show-default-nsmlignore', 'print the built-in ignore rules')
    .option('--json', 'progress and the session as JSON lines on stdout, for tools')
    .addHelpText('after', examples(["khd run -d breast_cancer", "this folder, on the dataset"], ["khd run -d breast_cancer -a '--epochs 30' -g 1 -i", "arguments, a GPU, follow the log"], ["khd run --dry-run", "what would be sent, and what .nsmlignore leaves out"]))
    .action((opts: RunOptions) => runRun(opts, ctx));
}

export async function runRun(opts: RunOptions, ctx: Context): Promise<void> {
  if (opts.showDefaultNsmlignore) {
    const { DEFAULT_NSMLIGNORE } = await import('../../../pack/default-ignores.js');
    return ctx.io.out(`${DEFAULT_NSMLIGNORE.join('\n')}\n`);
  }
  const [{ parseRunOptions }, { executeRun, showLimits }] = await Promise.all([
    import('./run-options.js'),
    import('./execute-run.js'),
  ]);
  const parsed = parseRunOptions(opts);
  if (opts.showLimits) return showLimits(ctx);
  return executeRun(opts, parsed, ctx);
}
