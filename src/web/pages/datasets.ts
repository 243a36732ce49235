import { html, render } from 'lit-html';
import { api } from '../api.js';
import { formatSize, type DatasetInfo } from '../wire.js';
import { ago, errorBox } from './common.js';

/** What `khd dataset ls` lists: name, size, description, and whether it keeps a leaderboard. */
export function datasetsPage(main: HTMLElement): void {
  const draw = (datasets: DatasetInfo[] | undefined, error = '') =>
    render(
      html`<h1>Datasets</h1>
        ${errorBox(error)}
        ${datasets === undefined
          ? html`<p>Loading…</p>`
          : datasets.length === 0
            ? html`<p>No datasets yet. An organiser pushes one with <code>khd dataset push NAME PATH</code>.</p>`
            : html`<table>
                <thead><tr><th scope="col">Name</th><th scope="col">Size</th><th scope="col">Files</th><th scope="col">Description</th><th scope="col">Leaderboard</th><th scope="col">Pushed</th></tr></thead>
                <tbody>
                  ${datasets.map(
                    (d) => html`<tr>
                      <td><a href="#/sessions?dataset=${encodeURIComponent(d.name)}" title="your sessions on ${d.name}">${d.name}</a></td>
                      <td>${formatSize(d.size)}</td>
                      <td>${d.files}</td>
                      <td>${d.description}</td>
                      <td>${d.leaderboard ? html`<a href="#/boards/${encodeURIComponent(d.name)}">yes (${d.metric}, ${d.order === 'desc' ? 'higher is better' : 'lower is better'})</a>` : 'no'}</td>
                      <td>${ago(d.createdAt)}</td>
                    </tr>`,
                  )}
                </tbody>
              </table>`}`,
      main,
    );
  draw(undefined);
  api<DatasetInfo[]>('GET', '/datasets').then(
    (d) => draw(d),
    (err: Error) => draw([], err.message),
  );
}
