import type { Context } from '../../context.js';
import { formatSize } from '../../../protocol/sizes.js';
import { timeAgo } from '../../../protocol/format.js';
import { renderTable } from '../../render/table.js';

export async function runDatasetLs(opts: { json?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const datasets = await api.calls.datasets();
  if (opts.json) return ctx.io.out(`${JSON.stringify(datasets, null, 2)}\n`);
  if (datasets.length === 0) return ctx.io.err('no datasets yet: an admin adds them with khd dataset push\n');
  const now = ctx.clock();
  ctx.io.out(
    renderTable(
      ['Name', 'Size', 'Files', 'Last Modified', 'Author', 'Leaderboard', 'Visibility', 'Description'],
      datasets.map((d) => [
        d.name, formatSize(d.size), d.files, timeAgo(d.modifiedAt, now), d.author, d.leaderboard ? `${d.metric}, ${d.order === 'desc' ? 'higher' : 'lower'} is better` : 'no',
        d.private ? 'private' : 'public', d.description,
      ]),
    ),
  );
}
