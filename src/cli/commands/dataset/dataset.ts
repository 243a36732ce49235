import { Command } from 'commander';
import type { Context } from '../../context.js';
import { choice, collect, examples } from '../../options.js';

/** The settings `withSettings` defines, as typed: push.ts parses the sizes and durations (their parsers load only there). */
export interface DatasetSettingsOptions {
  metric?: 'accuracy' | 'macro_f1' | 'mse' | 'custom';
  order?: 'desc' | 'asc';
  modelSizeLimit?: string;
  submitInterval?: string;
  pausedTimeout?: string;
  inferTimeout?: string;
  submitFrom?: string;
  submitUntil?: string;
  private?: boolean;
  /** false with --no-model-pull. */
  modelPull: boolean;
  message?: string;
}

export interface DatasetChangeOptions extends DatasetSettingsOptions {
  public?: boolean;
  json?: boolean;
}

export interface DatasetPushOptions extends DatasetSettingsOptions {
  leaderboard?: boolean;
  label?: string[];
  visible?: string[];
}


/** The settings `dataset push` sets and `dataset change` changes: the same flags, with what each does then. */
function withSettings(command: Command, mode: 'push' | 'change'): Command {
  const push = mode === 'push';
  const scored = push ? '' : ' (only before the board has a score)';
  return command
    .option('--metric <metric>', `accuracy, macro_f1, mse or custom (evaluation.py)${scored}`, choice('--metric', ['accuracy', 'macro_f1', 'mse', 'custom'] as const))
    .option('--order <order>', `desc (higher is better) or asc${scored}`, choice('--order', ['desc', 'asc'] as const))
    .option('--model-size-limit <size>', `largest checkpoint a submit may use${push ? ' (default 300MB)' : ', e.g. 300MB'}`)
    .option('--submit-interval <duration>', `one counted submit per team per interval${push ? ' (default 1h)' : ', e.g. 1h'}`)
    .option('--paused-timeout <duration>', `a submit must reach nsml.paused() within this${push ? ' (default 10m)' : ''}`)
    .option('--infer-timeout <duration>', `a submit must finish inference within this${push ? ' (default 1h)' : ''}`)
    .option('--submit-from <time>', `the competition window opens (ISO time, e.g. 2026-12-01T09:00:00+09:00${push ? '' : "; 'none' opens it"})`)
    .option('--submit-until <time>', `the competition window closes (ISO time${push ? '' : "; 'none' for no end"})`);
}

export function newDatasetCommand(ctx: Context): Command {
  const dataset = new Command('dataset').description('datasets: list, push (admin), leaderboards');
  withSettings(
    dataset
      .command('push <name> <path>')
      .description('upload a dataset folder (admin): train/ is what sessions see; test/, test_label stay hidden')
      .option('--leaderboard', 'keep a leaderboard for this dataset'),
    'push',
  )
    .option('--label <name>', 'a label file inside test/ and test_submit/ (default test_label): kept from participant code, given to the scorer (repeatable)', collect)
    .option('--visible <name>', 'a file inside test/ that looks like labels but is an input participant code may read (repeatable)', collect)
    .option('--private', 'only admins can see and use it')
    .option('--no-model-pull', "participants may not take checkpoints or sessions' files out (khd model pull, khd download)")
    .option('-m, --message <description>', 'a description shown by khd dataset ls')
    .addHelpText('after', examples(["khd dataset push breast_cancer /data/breast_cancer --leaderboard --metric custom -m 'WDBC'"], ["khd dataset push mnist ./mnist --leaderboard --submit-until 2026-12-05T18:00:00+09:00"]))
    .action(async (name: string, path: string, opts: DatasetPushOptions) => {
      const { runDatasetPush } = await import('./push.js');
      await runDatasetPush(name, path, opts, ctx);
    });
  dataset
    .command('board <name>')
    .description("a dataset's leaderboard: each team's best counted submit")
    .option('--json', 'print JSON')
    .addHelpText('after', examples(["khd dataset board breast_cancer"]))
    .action(async (name: string, opts: { json?: boolean }) => {
      const { runBoard } = await import('./board.js');
      await runBoard(name, opts, ctx);
    });
  dataset
    .command('submits <name>')
    .description("your team's submissions to a dataset, with scores and errors")
    .option('--json', 'print JSON')
    .addHelpText('after', examples(["khd dataset submits breast_cancer", "your team's, with scores and errors"]))
    .action(async (name: string, opts: { json?: boolean }) => {
      const { runSubmits } = await import('./board.js');
      await runSubmits(name, opts, ctx);
    });
  dataset
    .command('ls')
    .description('list datasets: Name, Size, Files, Last Modified, Author, Leaderboard, Visibility, Description')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(["khd dataset ls"]))
    .action(async (opts: { json?: boolean }) => {
      const { runDatasetLs } = await import('./ls.js');
      await runDatasetLs(opts, ctx);
    });
  withSettings(
    dataset
      .command('change <name>')
      .description("change a dataset (admin): its description, metric, limits, window, visibility; each change logged; with no option, the log")
      .option('-m, --message <description>', 'a new description'),
    'change',
  )
    .option('--private', 'only admins see and use it')
    .option('--public', 'every participant sees it')
    .option('--model-pull', "participants may take checkpoints and sessions' files out")
    .option('--no-model-pull', 'they may not')
    .option('--json', 'print the changes as JSON')
    .addHelpText('after', "\nExamples:\n  khd dataset change breast_cancer --submit-until 2026-12-05T18:00:00+09:00   # extend the window\n  khd dataset change breast_cancer                                             # what was changed, by whom")
    .action(async (name: string, opts: DatasetChangeOptions, command: Command) => {
      const { runDatasetChange } = await import('./change.js');
      await runDatasetChange(name, opts, command.getOptionValueSource('modelPull') === 'cli', ctx);
    });
  dataset
    .command('rm <name>')
    .description('remove a dataset no session or submit names, with its files (admin)')
    .addHelpText('after', examples(["khd dataset rm spare"]))
    .action(async (name: string) => {
      const api = await ctx.api();
      await api.calls.removeDataset(name);
      ctx.io.err(`✓ Removed dataset ${name}\n`);
    });
  dataset
    .command('fs <name>')
    .description("a dataset's files as the server keeps them (admin): public (training sees), private (submits see), labels (the scorer only)")
    .option('--json', 'print JSON')
    .addHelpText('after', examples(["khd dataset fs breast_cancer", "public, private and labels"]))
    .action(async (name: string, opts: { json?: boolean }) => {
      const { runDatasetFs } = await import('./change.js');
      await runDatasetFs(name, opts, ctx);
    });
  return dataset;
}
