import { html, type TemplateResult } from 'lit-html';
import { statusText, timeAgo, type SessionInfo } from '../wire.js';

/**
 * Calls `tick` now and every `ms` until stopped; a tick still running is not doubled. A tab in
 * the background asks nothing, and catches up as soon as it is shown again.
 */
export function every(ms: number, tick: () => Promise<unknown>): () => void {
  let busy = false;
  let stopped = false;
  const run = async () => {
    if (busy || stopped || document.hidden) return;
    busy = true;
    try {
      await tick();
    } finally {
      busy = false;
    }
  };
  const shown = () => void run();
  document.addEventListener('visibilitychange', shown);
  void run();
  const timer = setInterval(() => void run(), ms);
  return () => {
    stopped = true;
    clearInterval(timer);
    document.removeEventListener('visibilitychange', shown);
  };
}

export const sessionLink = (name: string): TemplateResult => html`<a href="#/sessions/${name}">${name}</a>`;

/** The status as `khd ps` writes it, with a class for its colour and the reason on hover and in text. */
export function statusBadge(s: Pick<SessionInfo, 'status' | 'exitCode' | 'reason'>): TemplateResult {
  return html`<span class="status ${s.status.toLowerCase()}">${statusText(s)}</span>${s.reason ? html` <span class="reason">${s.reason}</span>` : ''}`;
}

export const ago = (iso: string | null): TemplateResult | string =>
  iso ? html`<time datetime=${iso} title=${iso}>${timeAgo(iso, Date.now())}</time>` : '';


export function errorBox(error: string): TemplateResult | string {
  return error ? html`<p class="error" role="alert">${error}</p>` : '';
}
