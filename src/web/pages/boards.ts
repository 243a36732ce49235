import { html, render } from 'lit-html';
import { api } from '../api.js';
import { boardHeader, boardModel, formatScore, type BoardRow, type DatasetInfo, type SubmitInfo } from '../wire.js';
import { ago, errorBox, every } from './common.js';

/**
 * A dataset's public leaderboard (each team's best: Rank, Name, Team, Score, Model, Count,
 * Recorded, Last Submit, under what it ranks by) and
 * the participant's own submission history, updating every 5 s; without a dataset, the list of
 * datasets that keep one.
 */
export function boardsPage(main: HTMLElement, dataset: string | undefined): () => void {
  let boards: DatasetInfo[] | undefined;
  let board: BoardRow[] | undefined;
  let mine: SubmitInfo[] | undefined;
  let error = '';

  const picker = () =>
    boards && boards.length > 0
      ? html`<nav aria-label="Leaderboards" class="toolbar">
          ${boards.map((d) => html`<a href="#/boards/${encodeURIComponent(d.name)}" aria-current=${d.name === dataset ? 'page' : 'false'}>${d.name}</a>`)}
        </nav>`
      : boards
        ? html`<p>No dataset keeps a leaderboard yet.</p>`
        : '';

  const draw = () =>
    render(
      html`<h1>Leaderboards${dataset ? html` <span class="muted">·</span> ${dataset}` : ''}</h1>
        ${picker()} ${errorBox(error)}
        ${dataset === undefined
          ? ''
          : html`<section aria-labelledby="board-title">
                <h2 id="board-title">Leaderboard</h2>
                ${(() => {
                  const info = boards?.find((d) => d.name === dataset);
                  return info ? html`<p class="muted">${boardHeader(info)}</p>` : '';
                })()}
                ${board === undefined
                  ? html`<p>Loading…</p>`
                  : board.length === 0
                    ? html`<p>No counted submit yet.</p>`
                    : html`<table class="board">
                        <thead><tr><th scope="col">Rank</th><th scope="col">Name</th><th scope="col">Team</th><th scope="col">Score</th><th scope="col">Model</th><th scope="col">Count</th><th scope="col">Recorded</th><th scope="col">Last Submit</th></tr></thead>
                        <tbody>
                          ${board.map(
                            (r) => html`<tr><td>${r.rank}</td><td>${r.user}</td><td>${r.team}</td><td title=${String(r.score)}>${formatScore(r.score)}</td><td>${boardModel(r)}</td><td>${r.count}</td><td>${ago(r.recorded)}</td><td>${ago(r.lastSubmit)}</td></tr>`,
                          )}
                        </tbody>
                      </table>`}
              </section>
              <section aria-labelledby="mine-title">
                <h2 id="mine-title">Your submissions</h2>
                ${mine === undefined
                  ? html`<p>Loading…</p>`
                  : mine.length === 0
                    ? html`<p>None yet: <code>khd submit SESSION CHECKPOINT</code> (<code>-t</code> for a test submit that does not count).</p>`
                    : html`<table class="submits">
                        <thead><tr><th scope="col">#</th><th scope="col">Session</th><th scope="col">Checkpoint</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Score</th><th scope="col">Error or note</th><th scope="col">Submitted</th></tr></thead>
                        <tbody>
                          ${mine.map(
                            (s) => html`<tr>
                              <td>${s.id}</td><td>${s.source}</td><td>${s.checkpoint}</td><td>${s.test ? 'test (-t)' : 'counted'}</td>
                              <td>${s.status === 'evaluating' ? `evaluating: ${s.stage}` : s.status}</td>
                              <td>${s.score === null ? '' : formatScore(s.score)}</td><td>${s.error ?? s.note ?? ''}</td><td>${ago(s.createdAt)}</td>
                            </tr>`,
                          )}
                        </tbody>
                      </table>`}
              </section>`}`,
      main,
    );

  draw();
  void api<DatasetInfo[]>('GET', '/datasets').then(
    (all) => {
      boards = all.filter((d) => d.leaderboard);
      draw();
    },
    (err: Error) => ((error = err.message), draw()),
  );
  if (dataset === undefined) return () => {};
  const name = encodeURIComponent(dataset);
  return every(5000, async () => {
    try {
      [board, mine] = await Promise.all([api<BoardRow[]>('GET', `/datasets/${name}/board`), api<SubmitInfo[]>('GET', `/datasets/${name}/submits`)]);
      error = '';
    } catch (err) {
      error = (err as Error).message;
    }
    draw();
  });
}
