import type { Context } from '../../context.js';
import { formatSize } from '../../../protocol/sizes.js';
import { renderTable } from '../../render/table.js';

export async function runDatasetLs(opts: { json?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const datasets = await api.calls.datasets();
  if (opts.json) return ctx.io.out(`${JSON.stringify(datasets, null, 2)}\n`);
  if (datasets.length === 0) return ctx.io.err('no datasets yet: an admin adds them with khd dataset push\n');
  ctx.io.out(
    renderTable(
      ['Name', 'Size', 'Files', 'Leaderboard', 'Description'],
      datasets.map((d) => [d.name + (d.private ? ' (private)' : ''), formatSize(d.size), d.files, d.leaderboard ? 'yes' : 'no', d.description]),
    ),
  );
}
