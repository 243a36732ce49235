import asciichart from 'asciichart';
import { formatScore, metricName } from '../../../protocol/format.js';
import type { MetricPoint } from '../../../protocol/types.js';
import type { Context } from '../../context.js';
import { CliError } from '../../errors.js';
import { sessionArg } from '../../session-arg.js';
import type { PlotOptions } from './plot.js';

/** Room the y-axis labels take beside a chart. */
const AXIS_COLUMNS = 12;

export interface Series {
  step: number;
  value: number;
}

/** Every report of the session, page after page. */
async function allPoints(ctx: Context, session: string): Promise<MetricPoint[]> {
  const name = sessionArg(session);
  const api = await ctx.api();
  const points: MetricPoint[] = [];
  let offset = 0;
  for (;;) {
    const page = await api.calls.metrics(name, offset);
    points.push(...page.points);
    if (!page.more || page.offset === offset) return points;
    offset = page.offset;
  }
}

/** Each metric's values by step (a report without a step counts as the next one). */
export function seriesOf(points: MetricPoint[]): Map<string, Series[]> {
  const series = new Map<string, Series[]>();
  points.forEach((p, i) => {
    for (const [key, value] of Object.entries(p.metrics)) {
      if (!Number.isFinite(value)) continue;
      const name = metricName(key);
      const list = series.get(name) ?? [];
      list.push({ step: p.step ?? i, value });
      series.set(name, list);
    }
  });
  return series;
}

/** At most `width` values, evenly spaced over the reports, the first and the last among them. */
export function fitTo(series: Series[], width: number): number[] {
  if (series.length <= width) return series.map((s) => s.value);
  return Array.from({ length: width }, (_, i) => series[Math.round((i * (series.length - 1)) / (width - 1))]!.value);
}

export async function runPlot(session: string, wanted: string[], opts: PlotOptions, ctx: Context): Promise<void> {
  const series = seriesOf(await allPoints(ctx, session));
  if (series.size === 0) throw new CliError(`${session} has reported no metrics yet: nsml.report(step=…, train__loss=…) in the code reports them`);
  const names = wanted.length > 0 ? wanted.map((w) => metricName(w)) : [...series.keys()];
  const missing = names.filter((n) => !series.has(n));
  if (missing.length > 0) throw new CliError(`${session} reported no ${missing.join(', ')}: it reported ${[...series.keys()].join(', ')}`);
  if (opts.json) {
    return ctx.io.out(`${JSON.stringify(Object.fromEntries(names.map((n) => [n, series.get(n)])), null, 2)}\n`);
  }
  const columns = (opts.width ?? Math.max(20, ((ctx.io.stdout as { columns?: number }).columns ?? 80) - AXIS_COLUMNS));
  for (const name of names) {
    const s = series.get(name)!;
    const values = s.map((p) => p.value);
    const best = Math.min(...values);
    const last = s.at(-1)!;
    const steps = `steps ${s[0]!.step}–${last.step}`;
    ctx.io.out(`${name}  (${steps}; last ${formatScore(last.value)}, min ${formatScore(best)}, max ${formatScore(Math.max(...values))})\n`);
    ctx.io.out(`${asciichart.plot(fitTo(s, columns), { height: opts.height, format: (x) => formatScore(x).padStart(AXIS_COLUMNS - 2) })}\n\n`);
  }
}
