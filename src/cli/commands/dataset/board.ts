import type { Context } from '../../context.js';
import { boardHeader, boardModel, formatScore, timeAgo } from '../../../protocol/format.js';
import { renderTable } from '../../render/table.js';

const score = formatScore;

export async function runBoard(name: string, opts: { json?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const [rows, datasets] = await Promise.all([api.calls.board(name), opts.json ? [] : api.calls.datasets()]);
  if (opts.json) return ctx.io.out(`${JSON.stringify(rows, null, 2)}\n`);
  if (rows.length === 0) return ctx.io.err(`no counted submits to ${name} yet\n`);
  const now = ctx.clock();
  const dataset = datasets.find((d) => d.name === name);
  if (dataset) ctx.io.out(`${boardHeader(dataset)}\n\n`);
  ctx.io.out(
    renderTable(
      ['Rank', 'Name', 'Team', 'Score', 'Model', 'Count', 'Recorded', 'Last Submit'],
      rows.map((r) => [r.rank, r.user, r.team, score(r.score), boardModel(r), r.count, timeAgo(r.recorded, now), timeAgo(r.lastSubmit, now)]),
    ),
  );
}

export async function runSubmits(name: string, opts: { json?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const rows = await api.calls.submits(name);
  if (opts.json) return ctx.io.out(`${JSON.stringify(rows, null, 2)}\n`);
  if (rows.length === 0) return ctx.io.err(`your team has not submitted to ${name} yet\n`);
  const now = ctx.clock();
  ctx.io.out(
    renderTable(
      ['Submitted', 'Session', 'Model', 'By', 'Kind', 'Status', 'Score', 'Error or note'],
      rows.map((r) => [
        timeAgo(r.createdAt, now), r.source, r.checkpoint, r.user, r.test ? 'test' : 'counted',
        r.status === 'evaluating' ? `evaluating (${r.stage})` : r.status, r.score === null ? '' : score(r.score), r.error ?? r.note ?? '',
      ]),
    ),
  );
}
