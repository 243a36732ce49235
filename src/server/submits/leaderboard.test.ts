import { describe, expect, it } from 'vitest';
import type { SubmitRow } from '../store/submits.js';
import { leaderboard } from './leaderboard.js';

let id = 0;
const submit = (team: string, score: number, minute: number): SubmitRow =>
  ({
    id: ++id, teamId: team.charCodeAt(0), team, score, source: `${team}/d/1`, checkpoint: `m${id}`,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
  }) as SubmitRow;

describe('leaderboard', () => {
  it('ranks each team’s best, higher first for desc, and counts every counted submit', () => {
    const rows = leaderboard([submit('a', 0.8, 1), submit('b', 0.9, 2), submit('a', 0.95, 3), submit('a', 0.7, 4)], 'desc');
    expect(rows.map((r) => [r.rank, r.team, r.score, r.count])).toEqual([[1, 'a', 0.95, 3], [2, 'b', 0.9, 1]]);
    expect(rows[0]!.lastSubmit).toBe('2026-01-01T00:04:00.000Z');
    expect(rows[0]!.model).toBe('m3');
  });

  it('puts lower first for asc (errors), and breaks ties by the earlier submit', () => {
    const rows = leaderboard([submit('c', 0.2, 5), submit('d', 0.2, 3), submit('e', 0.1, 9)], 'asc');
    expect(rows.map((r) => r.team)).toEqual(['e', 'd', 'c']);
  });

  it('keeps a team’s earlier submit as its best when a later one only ties it', () => {
    const rows = leaderboard([submit('f', 0.5, 1), submit('f', 0.5, 2)], 'desc');
    expect(rows[0]!.model).toBe(`m${id - 1}`);
  });
});
