import { html, render } from 'lit-html';
import { api, ApiError } from '../api.js';
import { MetricCharts } from '../charts.js';
import { followLog } from '../log-stream.js';
import { formatSize, isFinished, sessionPath, summaryText, type CheckpointInfo, type LogRecord, type MetricsPage, type SessionInfo } from '../wire.js';
import { ago, errorBox, every, statusBadge } from './common.js';

/** Lines kept on the page; older ones are dropped from the view (`khd logs` has them all). */
const MAX_LINES = 5000;

/**
 * One session: what it is, its checkpoints, a chart per metric group gaining points as
 * `nsml.report` records them, and its log streaming live, stdout and stderr told apart.
 */
export function sessionPage(main: HTMLElement, name: string): () => void {
  let session: SessionInfo | undefined;
  let models: CheckpointInfo[] = [];
  let error = '';
  let follow = true;

  render(
    html`<h1><span class="muted">Session</span> ${name}</h1>
      <div id="about"></div>
      <section aria-labelledby="metrics-title">
        <h2 id="metrics-title">Metrics</h2>
        <p id="no-metrics" class="muted">Nothing reported yet: <code>nsml.report(step=…, train__loss=…)</code> draws here.</p>
        <div id="charts" class="charts"></div>
      </section>
      <section aria-labelledby="models-title">
        <h2 id="models-title">Checkpoints</h2>
        <div id="models"></div>
      </section>
      <section aria-labelledby="log-title">
        <div class="log-head">
          <h2 id="log-title">Log</h2>
          <label><input id="follow" type="checkbox" checked /> Follow</label>
          <span id="log-state" class="muted" role="status"></span>
        </div>
        <p id="log-note" class="muted" hidden></p>
        <div id="log" class="log" role="log" aria-labelledby="log-title" tabindex="0"></div>
      </section>`,
    main,
  );
  const $ = (id: string) => main.querySelector<HTMLElement>(`#${id}`)!;
  const logBox = $('log');
  const followBox = $('follow') as HTMLInputElement;
  followBox.addEventListener('change', () => {
    follow = followBox.checked;
    if (follow) logBox.scrollTop = logBox.scrollHeight;
  });
  // Scrolling up to read stops following; back at the bottom follows again.
  logBox.addEventListener('scroll', () => {
    const atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 8;
    if (atBottom !== follow) followBox.checked = follow = atBottom;
  });

  const drawAbout = () => {
    render(
      html`${errorBox(error)}
        ${session
          ? html`<dl class="about">
              <dt>Status</dt><dd>${statusBadge(session)}</dd>
              <dt>Created</dt><dd>${ago(session.createdAt)}</dd>
              ${session.endedAt ? html`<dt>Ended</dt><dd>${ago(session.endedAt)}</dd>` : ''}
              <dt>Command</dt><dd><code>${[session.entry, ...session.args].join(' ')}</code></dd>
              <dt>Resources</dt><dd>${session.cpus} CPU, ${formatSize(session.memory)} memory${session.gpus ? `, ${session.gpus} GPU` : ''}</dd>
              <dt>Summary</dt><dd>${summaryText(session.summary) || html`<span class="muted">none</span>`}</dd>
              ${session.memo ? html`<dt>Description</dt><dd>${session.memo}</dd>` : ''}
            </dl>
            ${isFinished(session.status) || session.type !== 'normal'
              ? ''
              : html`<button @click=${() => api('POST', `${sessionPath(name)}/stop`).then(refresh, (err: Error) => ((error = err.message), drawAbout()))}>Stop</button>`}`
          : ''}`,
      $('about'),
    );
    render(
      models.length === 0
        ? html`<p class="muted">No checkpoints: <code>nsml.save(name)</code> keeps one.</p>`
        : html`<table>
            <thead><tr><th scope="col">Checkpoint</th><th scope="col">Last Modified</th><th scope="col">Elapsed</th><th scope="col">Summary</th><th scope="col">Size</th></tr></thead>
            <tbody>
              ${models.map(
                (m) => html`<tr><td>${m.checkpoint}</td><td>${ago(m.lastModified)}</td><td>${m.elapsed === null ? '' : `${m.elapsed} s`}</td><td>${summaryText(m.summary)}</td><td>${formatSize(m.size)}</td></tr>`,
              )}
            </tbody>
          </table>`,
      $('models'),
    );
  };

  const refresh = async () => {
    try {
      [session, models] = await Promise.all([api<SessionInfo>('GET', sessionPath(name)), api<CheckpointInfo[]>('GET', `${sessionPath(name)}/models`)]);
      error = '';
    } catch (err) {
      // Missing, or another team's (answered the same): nothing of it is shown.
      if (err instanceof ApiError && err.status === 404) return gone(err.message);
      error = (err as Error).message;
    }
    drawAbout();
  };
  const gone = (message: string) => {
    leave();
    render(
      html`<h1><span class="muted">Session</span> ${name}</h1>
        ${errorBox(message)}
        <p><a href="#/sessions">Your sessions</a></p>`,
      main,
    );
  };

  // Metrics: asked again from the offset the last answer gave, so each report is drawn once.
  const charts = new MetricCharts($('charts'));
  let offset = 0;
  let metricsDone = false;
  const pollMetrics = async () => {
    if (metricsDone) return;
    const ended = session !== undefined && isFinished(session.status);
    for (;;) {
      const page = await api<MetricsPage>('GET', `${sessionPath(name)}/metrics?offset=${offset}`);
      offset = page.offset;
      if (page.points.length > 0) {
        $('no-metrics').hidden = true;
        charts.add(page.points);
      }
      if (!page.more) break;
    }
    // One last read after the end, then nothing more can come.
    if (ended) metricsDone = true;
  };

  const appendLines = (records: LogRecord[]) => {
    const fragment = document.createDocumentFragment();
    for (const r of records) {
      const div = document.createElement('div');
      div.className = r.stream === 'stderr' ? 'line err' : 'line';
      div.dataset.id = String(r.id);
      if (r.stream === 'stderr') {
        const tag = document.createElement('span');
        tag.className = 'stream';
        tag.textContent = 'stderr';
        div.append(tag);
      }
      div.append(r.line);
      fragment.append(div);
    }
    logBox.append(fragment);
    while (logBox.childElementCount > MAX_LINES) logBox.firstElementChild!.remove();
    const first = Number(logBox.firstElementChild?.getAttribute('data-id') ?? 1);
    if (first > 1) {
      const note = $('log-note');
      note.hidden = false;
      note.textContent = `Showing the log from line ${first}; earlier lines: khd logs ${name}`;
    }
    if (follow) logBox.scrollTop = logBox.scrollHeight;
  };
  const setLogState = (state: string) => ($('log-state').textContent = state);
  setLogState('connecting…');
  const stopLog = followLog(name, {
    onRecords: appendLines,
    onEnd: (end) => {
      setLogState(`ended: ${end.status}${end.exitCode !== null ? ` (exit code ${end.exitCode})` : ''}${end.reason ? `: ${end.reason}` : ''}`);
      void refresh().then(pollMetrics).catch(() => {});
    },
    onState: (state) => setLogState(state === 'live' ? 'live' : 'reconnecting…'),
    onRefused: (err) => setLogState(err.message),
  });

  const stopPolling = every(2000, async () => {
    await refresh();
    if (session) await pollMetrics().catch(() => {});
  });
  function leave() {
    stopPolling();
    stopLog();
    charts.destroy();
  }
  return leave;
}
