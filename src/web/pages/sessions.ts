import { html, render } from 'lit-html';
import { api } from '../api.js';
import { formatSize, isFinished, sessionPath, summaryText, type DatasetInfo, type SessionInfo } from '../wire.js';
import { ago, errorBox, every, sessionLink, statusBadge } from './common.js';

/**
 * The participant's sessions, as `khd ps -a` lists them, updating every 2 s: filter by dataset,
 * stop a running one, set a memo.
 */
export function sessionsPage(main: HTMLElement, dataset: string | undefined): () => void {
  let sessions: SessionInfo[] | undefined;
  let datasets: DatasetInfo[] = [];
  let error = '';
  let editing: { name: string; memo: string } | undefined;

  const load = async () => {
    const query = new URLSearchParams({ all: '1', limit: '200' });
    if (dataset !== undefined) query.set('dataset', dataset);
    try {
      sessions = await api<SessionInfo[]>('GET', `/sessions?${query}`);
      error = '';
    } catch (err) {
      error = (err as Error).message;
    }
    draw();
  };
  const act = async (call: () => Promise<unknown>) => {
    try {
      await call();
      await load();
    } catch (err) {
      error = (err as Error).message;
      draw();
    }
  };
  const stop = (s: SessionInfo) => act(() => api('POST', `${sessionPath(s.name)}/stop`));
  const saveMemo = (event: SubmitEvent) => {
    event.preventDefault();
    const { name, memo } = editing!;
    editing = undefined;
    return act(() => api('PATCH', sessionPath(name), { memo }));
  };
  const filter = (event: Event) => {
    const value = (event.target as HTMLSelectElement).value;
    location.hash = value ? `#/sessions?dataset=${encodeURIComponent(value)}` : '#/sessions';
  };

  const memoCell = (s: SessionInfo) =>
    editing?.name === s.name
      ? html`<form class="memo" @submit=${saveMemo}>
          <label class="visually-hidden" for="memo-input">Memo of ${s.name}</label>
          <input id="memo-input" .value=${editing.memo} @input=${(e: Event) => (editing!.memo = (e.target as HTMLInputElement).value)} maxlength="4096" />
          <button type="submit">Save</button>
          <button type="button" @click=${() => ((editing = undefined), draw())}>Cancel</button>
        </form>`
      : html`${s.memo}
          <button class="link" aria-label="Edit the memo of ${s.name}" @click=${() => ((editing = { name: s.name, memo: s.memo }), draw())}>edit</button>`;

  const draw = () =>
    render(
      html`<h1>Sessions</h1>
        <div class="toolbar">
          <label for="dataset-filter">Dataset</label>
          <select id="dataset-filter" @change=${filter}>
            <option value="" ?selected=${dataset === undefined}>all</option>
            ${datasets.map((d) => html`<option value=${d.name} ?selected=${d.name === dataset}>${d.name}</option>`)}
            <option value="None" ?selected=${dataset === 'None'}>None (no dataset)</option>
          </select>
        </div>
        ${errorBox(error)}
        ${sessions === undefined
          ? html`<p>Loading…</p>`
          : sessions.length === 0
            ? html`<p>No sessions yet. Start one with <code>khd run -d DATASET</code>.</p>`
            : html`<table class="sessions">
                <thead>
                  <tr><th scope="col">Name</th><th scope="col">Created</th><th scope="col">Args</th><th scope="col">Status</th><th scope="col">Summary</th><th scope="col"># of Models</th><th scope="col">Description</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr>
                </thead>
                <tbody>
                  ${sessions.map(
                    (s) => html`<tr data-session=${s.name}>
                      <td>${sessionLink(s.name)}</td>
                      <td>${ago(s.createdAt)}</td>
                      <td><code>${[s.entry, ...s.args].join(' ')}</code></td>
                      <td>${statusBadge(s)}</td>
                      <td>${summaryText(s.summary)}</td>
                      <td>${s.models}${s.models ? html` <span class="muted">(${formatSize(s.modelsSize)})</span>` : ''}</td>
                      <td>${memoCell(s)}</td>
                      <td>${isFinished(s.status) || s.type !== 'normal' ? '' : html`<button aria-label="Stop ${s.name}" @click=${() => stop(s)}>Stop</button>`}</td>
                    </tr>`,
                  )}
                </tbody>
              </table>`}`,
      main,
    );

  void api<DatasetInfo[]>('GET', '/datasets').then(
    (list) => ((datasets = list), draw()),
    () => {},
  );
  return every(2000, load);
}
