// How sessions, times and metrics are written, the same in the CLI and the dashboard.
import type { LimitEnforcement, SessionInfo } from './types.js';

const RELATIVE = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const STEPS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 30],
  ['month', 12],
  ['year', Infinity],
];

/** `5 minutes ago`, as NSML's ps showed it. */
export function timeAgo(iso: string, now: number): string {
  let value = (new Date(iso).getTime() - now) / 1000;
  for (const [unit, size] of STEPS) {
    if (Math.abs(value) < size) return RELATIVE.format(Math.round(value), unit);
    value /= size;
  }
  return iso;
}

export function statusText(s: Pick<SessionInfo, 'status' | 'exitCode'> & { queueReason?: string | null }): string {
  if (s.status === 'Queued' && s.queueReason) return `Queued: ${s.queueReason}`;
  return s.status === 'Exited' ? `Exited (${s.exitCode ?? '?'})` : s.status;
}

/** A reported metric's name as shown: `nsml.report(train__loss=…)` is `train/loss`. */
/** A session's kind as NSML's `ps` showed it: `normal`, `normal/fork`, `submit`, `submit(test)`. */
export function typeText(s: Pick<SessionInfo, 'type' | 'forkOf'>): string {
  return s.forkOf ? 'normal/fork' : s.type;
}

export function metricName(key: string): string {
  return key.replace(/__/g, '/');
}

export function summaryText(summary: Record<string, number> | null): string {
  if (!summary) return '';
  return Object.entries(summary)
    .map(([k, v]) => `${metricName(k)}=${Number(v.toPrecision(4))}`)
    .join(' ');
}

/** How a server keeps its session limits, in one line (`khd server`, `khd run --show-limits`). */
export function enforcedLine(e: LimitEnforcement): string {
  const how = e.fallbackReason ? `${e.memory} (no cgroups: ${e.fallbackReason})` : `by the kernel, ${e.memory}`;
  const who = e.uids ? `each session its own uid (${e.uids})` : "sessions run as the server's uid";
  return `${how}; ${who}`;
}
