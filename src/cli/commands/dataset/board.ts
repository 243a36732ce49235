import type { Context } from '../../context.js';
import { timeAgo } from '../../../protocol/format.js';
import { renderTable } from '../../render/table.js';

const score = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(6).replace(/0+$/, ''));

export async function runBoard(name: string, opts: { json?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const rows = await api.calls.board(name);
  if (opts.json) return ctx.io.out(`${JSON.stringify(rows, null, 2)}\n`);
  if (rows.length === 0) return ctx.io.err(`no counted submits to ${name} yet\n`);
  const now = ctx.clock();
  ctx.io.out(
    renderTable(
      ['Rank', 'Name', 'Score', 'Model', 'Team', 'Count', 'Last Submit'],
      rows.map((r) => [r.rank, r.name, score(r.score), r.model, r.team, r.count, timeAgo(r.lastSubmit, now)]),
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
