import { html, render } from 'lit-html';
import { api } from '../api.js';
import { formatDuration, formatSize, summaryText, typeText, type DatasetInfo, type Me, type SessionInfo } from '../wire.js';
import { ago, errorBox, every, sessionLink, statusBadge } from './common.js';

/** Competition rules are set in decimal megabytes (KHD2020: 300 MB): shown as they were set. */
const modelSize = (n: number) => (n % 1_000_000 === 0 ? `${n / 1_000_000} MB` : formatSize(n));

/** For organisers: every session of every user, the users and their teams, the datasets and their rules. */
export function adminPage(main: HTMLElement): () => void {
  let sessions: SessionInfo[] = [];
  let users: Me[] = [];
  let datasets: DatasetInfo[] = [];
  let error = '';

  const window = (d: DatasetInfo) =>
    d.submitFrom || d.submitUntil ? `${d.submitFrom ?? 'any time'} – ${d.submitUntil ?? 'no end'}` : 'always open';

  let teamOf = new Map<string, string>();
  const draw = () =>
    render(
      html`<h1>Organiser</h1>
        ${errorBox(error)}
        <section aria-labelledby="all-sessions">
          <h2 id="all-sessions">All sessions</h2>
          <table>
            <thead><tr><th scope="col">Name</th><th scope="col">Team</th><th scope="col">Type</th><th scope="col">Created</th><th scope="col">Status</th><th scope="col">Summary</th><th scope="col"># of Models</th></tr></thead>
            <tbody>
              ${sessions.map(
                (s) => html`<tr><td>${sessionLink(s.name)}</td><td>${teamOf.get(s.user) ?? ''}</td><td>${typeText(s)}</td><td>${ago(s.createdAt)}</td><td>${statusBadge(s)}</td><td>${summaryText(s.summary)}</td><td>${s.models}</td></tr>`,
              )}
            </tbody>
          </table>
        </section>
        <section aria-labelledby="users">
          <h2 id="users">Users and teams</h2>
          <table>
            <thead><tr><th scope="col">User</th><th scope="col">Team</th><th scope="col">Role</th></tr></thead>
            <tbody>${users.map((u) => html`<tr><td>${u.user}</td><td>${u.team}</td><td>${u.admin ? 'admin' : 'participant'}</td></tr>`)}</tbody>
          </table>
        </section>
        <section aria-labelledby="rules">
          <h2 id="rules">Datasets and their rules</h2>
          <table>
            <thead><tr><th scope="col">Dataset</th><th scope="col">Size</th><th scope="col">Leaderboard</th><th scope="col">Model size limit</th><th scope="col">Counted submits</th><th scope="col">Inference</th><th scope="col">Window</th><th scope="col">Visibility</th></tr></thead>
            <tbody>
              ${datasets.map(
                (d) => html`<tr>
                  <td>${d.name}</td><td>${formatSize(d.size)}</td>
                  <td>${d.leaderboard ? `${d.metric}, ${d.order === 'desc' ? 'higher' : 'lower'} is better` : 'none'}</td>
                  <td>${modelSize(d.modelSizeLimit)}</td>
                  <td>${d.submitIntervalMs ? `one per team per ${formatDuration(d.submitIntervalMs)}` : 'no limit'}</td>
                  <td>paused within ${formatDuration(d.pausedTimeoutMs)}, infer within ${formatDuration(d.inferTimeoutMs)}</td>
                  <td>${window(d)}</td><td>${d.private ? 'private' : 'public'}</td>
                </tr>`,
              )}
            </tbody>
          </table>
        </section>`,
      main,
    );

  return every(3000, async () => {
    try {
      [sessions, users, datasets] = await Promise.all([
        api<SessionInfo[]>('GET', '/sessions?everyone=1&all=1&limit=500'),
        api<Me[]>('GET', '/users'),
        api<DatasetInfo[]>('GET', '/datasets'),
      ]);
      teamOf = new Map(users.map((u) => [u.user, u.team]));
      error = '';
    } catch (err) {
      error = (err as Error).message;
    }
    draw();
  });
}
