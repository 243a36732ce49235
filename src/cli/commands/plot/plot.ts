import { Command } from 'commander';
import type { Context } from '../../context.js';
import { examples, parseWhole } from '../../options.js';

export interface PlotOptions {
  json?: boolean;
  height: number;
  width?: number;
}

export function newPlotCommand(ctx: Context): Command {
  return new Command('plot')
    .description("a session's reported metrics (nsml.report) as charts in the terminal, one per metric, by step")
    .argument('<session>', 'USER/DATASET/N')
    .argument('[metrics...]', 'the metrics to draw, e.g. train/loss valid/acc (default: all)')
    .option('--height <rows>', 'rows of each chart', parseWhole(3), 10)
    .option('--width <columns>', 'columns of each chart (default: the terminal’s)', parseWhole(10))
    .option('--json', 'the points as JSON: {metric: [{step, value}]}')
    .addHelpText('after', examples(['khd plot kim/breast_cancer/3', 'every metric it reported'], ['khd plot kim/breast_cancer/3 train/loss --height 15']))
    .action(async (session: string, metrics: string[], opts: PlotOptions) => {
      const { runPlot } = await import('./run-plot.js');
      await runPlot(session, metrics, opts, ctx);
    });
}
