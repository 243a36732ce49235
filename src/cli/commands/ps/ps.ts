import { Command } from 'commander';
import type { SessionInfo } from '../../../protocol/types.js';
import type { Context } from '../../context.js';
import { statusText, summaryText, timeAgo, typeText } from '../../../protocol/format.js';
import { parseWhole } from '../../options.js';

export interface PsOptions {
  all?: boolean;
  n?: number;
  dataset?: string;
  search?: string;
  team?: boolean;
  json?: boolean;
}

export const PS_COLUMNS = ['Name', 'Created', 'Args', 'Status', 'Summary', 'Description', '# of Models', 'Size', 'Type'];

export function newPsCommand(ctx: Context): Command {
  return new Command('ps')
    .description('list your sessions (running and queued; -a for all; --team with your teammates\')')
    .option('-a, --all', 'include ended sessions')
    .option('-n <n>', 'show at most N sessions', parseWhole(1))
    .option('-d, --dataset <name>', 'only sessions of this dataset')
    .option('-s, --search <text>', 'only sessions whose name or memo holds TEXT (any case)')
    .option('-t, --team', "your teammates' sessions too (they read, load from and submit each other's)")
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  khd ps -a -s resnet        # every session of yours whose name or memo mentions resnet\n  khd ps -a --team           # your team\'s, as NSML\'s team accounts listed them\n  khd ps -a -d breast_cancer -n 5')
    .action((opts: PsOptions) => runPs(opts, ctx));
}

export function psRow(s: SessionInfo, now: number, formatSize: (n: number) => string, paint: (s: SessionInfo, text: string) => string = (_s, t) => t): string[] {
  return [
    s.name,
    timeAgo(s.createdAt, now),
    [s.entry, ...s.args].join(' '),
    paint(s, statusText(s)),
    summaryText(s.summary),
    s.memo,
    String(s.models),
    formatSize(s.modelsSize),
    typeText(s),
  ];
}

export async function runPs(opts: PsOptions, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const sessions = await api.calls.sessions({ all: opts.all, limit: opts.n, dataset: opts.dataset, search: opts.search, mine: !opts.team });
  if (opts.json) return ctx.io.out(`${JSON.stringify(sessions, null, 2)}\n`);
  if (sessions.length === 0 && opts.search) {
    ctx.io.err(`no ${opts.all ? '' : 'running '}session's name or memo holds '${opts.search}'${opts.all ? '' : ' (khd ps -a searches ended ones too)'}\n`);
    return;
  }
  if (sessions.length === 0) {
    ctx.io.err(opts.all ? 'no sessions yet: start one with khd run\n' : 'no running sessions (khd ps -a shows ended ones)\n');
    return;
  }
  // The table and size formatting load only when there is a table to print, chalk (~15 ms)
  // only when it is printed in colour.
  const [{ renderTable }, { formatSize }] = await Promise.all([import('../../render/table.js'), import('../../../protocol/sizes.js')]);
  let paint: (s: SessionInfo, text: string) => string = (_s, text) => text;
  if (ctx.io.colorOut) {
    const { paintOf, paintStatus } = await import('../../render/colors.js');
    const chalk = paintOf(true);
    paint = (s, text) => paintStatus(chalk, s, text);
  }
  const now = ctx.clock();
  ctx.io.out(renderTable(PS_COLUMNS, sessions.map((s) => psRow(s, now, formatSize, paint))));
}
