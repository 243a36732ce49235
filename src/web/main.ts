import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { html, render } from 'lit-html';
import { api, login, whenUnauthorized } from './api.js';
import { adminPage } from './pages/admin.js';
import { boardsPage } from './pages/boards.js';
import { datasetsPage } from './pages/datasets.js';
import { loginPage } from './pages/login.js';
import { sessionPage } from './pages/session.js';
import { sessionsPage } from './pages/sessions.js';

type Route =
  | { page: 'sessions'; dataset?: string }
  | { page: 'session'; name: string }
  | { page: 'datasets' }
  | { page: 'boards'; dataset?: string }
  | { page: 'admin' };

/** `#/sessions?dataset=mnist`, `#/sessions/kim/mnist/3`, `#/datasets`, `#/boards/mnist`, `#/admin`. */
function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  switch (parts[0]) {
    case 'sessions':
      return parts.length === 4 ? { page: 'session', name: parts.slice(1).join('/') } : { page: 'sessions', dataset: params.get('dataset') ?? undefined };
    case 'datasets':
      return { page: 'datasets' };
    case 'boards':
      return { page: 'boards', dataset: parts[1] };
    case 'admin':
      return { page: 'admin' };
    default:
      return { page: 'sessions' };
  }
}

const TITLES: Record<Route['page'], string> = { sessions: 'Sessions', session: 'Session', datasets: 'Datasets', boards: 'Leaderboards', admin: 'Organiser' };

const bar = document.getElementById('bar')!;
const main = document.getElementById('main')!;
let leave: (() => void) | void;

function drawBar(route: Route | undefined): void {
  const me = login.me();
  const link = (href: string, label: string, page: Route['page']) =>
    html`<a href=${href} aria-current=${route?.page === page || (page === 'sessions' && route?.page === 'session') ? 'page' : 'false'}>${label}</a>`;
  render(
    html`<nav aria-label="Main">
      <a class="brand" href="#/sessions">khd</a>
      ${me
        ? html`${link('#/sessions', 'Sessions', 'sessions')} ${link('#/datasets', 'Datasets', 'datasets')} ${link('#/boards', 'Leaderboards', 'boards')}
            ${me.admin ? link('#/admin', 'Organiser', 'admin') : ''}
            <span class="who">${me.user} <span class="muted">(team ${me.team})</span></span>
            <button class="link" @click=${logout}>Log out</button>`
        : ''}
    </nav>`,
    bar,
  );
}

async function logout(): Promise<void> {
  await api('POST', '/auth/logout').catch(() => {});
  login.forget();
  show();
}

/** A fresh element for the next page: each page renders into its own, never into another's. */
function freshPage(): HTMLElement {
  const page = document.createElement('div');
  main.replaceChildren(page);
  return page;
}

/** Draws the page the address names; the page it replaces stops its streams and polls first. */
function show(): void {
  leave?.();
  leave = undefined;
  if (!login.token()) {
    drawBar(undefined);
    document.title = 'Log in · khd';
    loginPage(freshPage(), show);
    return;
  }
  const route = parseRoute(location.hash);
  drawBar(route);
  document.title = `${route.page === 'session' ? route.name : TITLES[route.page]} · khd`;
  const page = freshPage();
  switch (route.page) {
    case 'sessions':
      leave = sessionsPage(page, route.dataset);
      break;
    case 'session':
      leave = sessionPage(page, route.name);
      break;
    case 'datasets':
      datasetsPage(page);
      break;
    case 'boards':
      leave = boardsPage(page, route.dataset);
      break;
    case 'admin':
      leave = adminPage(page);
      break;
  }
}

whenUnauthorized(show);
window.addEventListener('hashchange', show);
show();
