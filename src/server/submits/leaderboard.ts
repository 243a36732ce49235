import type { BoardRow, DatasetOptions } from '../../protocol/types.js';
import type { SubmitRow } from '../store/submits.js';

/**
 * Each team's best counted submit, ranked by the dataset's order; between equal scores the
 * earlier submit ranks first. Count and Last Submit cover all of the team's counted submits.
 */
export function leaderboard(counted: SubmitRow[], order: DatasetOptions['order']): BoardRow[] {
  const better = (a: SubmitRow, b: SubmitRow) => {
    const diff = order === 'desc' ? b.score! - a.score! : a.score! - b.score!;
    return diff !== 0 ? diff < 0 : a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);
  };
  const teams = new Map<number, { best: SubmitRow; count: number; last: string }>();
  for (const s of counted) {
    const t = teams.get(s.teamId);
    if (!t) teams.set(s.teamId, { best: s, count: 1, last: s.createdAt });
    else {
      t.count += 1;
      if (s.createdAt > t.last) t.last = s.createdAt;
      if (better(s, t.best)) t.best = s;
    }
  }
  return [...teams.values()]
    .sort((a, b) => (better(a.best, b.best) ? -1 : better(b.best, a.best) ? 1 : 0))
    .map((t, i) => ({
      rank: i + 1,
      name: t.best.source,
      score: t.best.score!,
      model: t.best.checkpoint,
      team: t.best.team,
      user: t.best.user,
      recorded: t.best.createdAt,
      count: t.count,
      lastSubmit: t.last,
    }));
}
