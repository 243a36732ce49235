import type { SessionInfo } from '../../protocol/types.js';

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

export function statusText(s: Pick<SessionInfo, 'status' | 'exitCode'>): string {
  return s.status === 'Exited' ? `Exited (${s.exitCode ?? '?'})` : s.status;
}

export function summaryText(summary: Record<string, number> | null): string {
  if (!summary) return '';
  return Object.entries(summary)
    .map(([k, v]) => `${k.replace(/__/g, '/')}=${Number(v.toPrecision(4))}`)
    .join(' ');
}
