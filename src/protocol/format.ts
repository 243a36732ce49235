// How sessions, times and metrics are written, the same in the CLI and the dashboard.
import type { LimitEnforcement, SessionInfo } from './types.js';

type Unit = 'second' | 'minute' | 'hour' | 'day' | 'month' | 'year';
const STEPS: [Unit, number][] = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 30],
  ['month', 12],
  ['year', Infinity],
];
/** What English says instead of a number (Intl's `numeric: 'auto'`), for the values a step can reach. */
const WORDS: Partial<Record<string, string>> = {
  'second 0': 'now', 'minute 0': 'this minute', 'hour 0': 'this hour', 'day 0': 'today', 'month 0': 'this month', 'year 0': 'this year',
  'day -1': 'yesterday', 'day 1': 'tomorrow',
  'month -1': 'last month', 'month 1': 'next month', 'year -1': 'last year', 'year 1': 'next year',
};

/**
 * `5 minutes ago`, as NSML's ps showed it. Written out here in English, as
 * `Intl.RelativeTimeFormat('en', { numeric: 'auto' })` writes it (a unit test compares them):
 * making that formatter costs ~12 ms, a tenth of a `khd ps`.
 */
export function timeAgo(iso: string, now: number): string {
  let value = (new Date(iso).getTime() - now) / 1000;
  for (const [unit, size] of STEPS) {
    if (Math.abs(value) < size) return relative(Math.round(value), unit);
    value /= size;
  }
  return iso;
}

function relative(n: number, unit: Unit): string {
  const word = WORDS[`${unit} ${n === 0 ? 0 : n}`];
  if (word) return word;
  const count = `${String(Math.abs(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')} ${unit}${Math.abs(n) === 1 ? '' : 's'}`;
  return n < 0 || Object.is(n, -0) ? `${count} ago` : `in ${count}`;
}

/**
 * A moment as people read it: their own clock with its zone and how far off it is
 * (`2026-12-03 21:10 KST, in 53 minutes`), or UTC (`2026-12-03 12:10 UTC, in 53 minutes`).
 */
export function formatTime(iso: string, now: number, utc = false): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
      ...(utc ? { timeZone: 'UTC' } : {}),
    }).formatToParts(at).map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${parts.timeZoneName}, ${timeAgo(iso, now)}`;
}

/** Every ISO time in a message (the server writes them so) as formatTime writes it. */
export function localTimes(text: string, now: number, utc = false): string {
  return text.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)/g, (iso) => formatTime(iso, now, utc));
}

export function statusText(s: Pick<SessionInfo, 'status' | 'exitCode'> & { queueReason?: string | null }): string {
  if (s.status === 'Queued' && s.queueReason) return `Queued: ${s.queueReason}`;
  return s.status === 'Exited' ? `Exited (${s.exitCode ?? '?'})` : s.status;
}

/** A reported metric's name as shown: `nsml.report(train__loss=…)` is `train/loss`. */
/**
 * A score as every view shows it (submit, board, submits, dashboard): whole numbers as they are,
 * others to 6 significant digits (0.954247, 1.23457e-7). JSON keeps the full number.
 */
export function formatScore(score: number): string {
  return Number.isInteger(score) ? String(score) : String(Number(score.toPrecision(6)));
}

/** What a leaderboard ranks by, as its header says it: `accuracy · higher is better`. */
export function boardHeader(d: { name: string; metric: string; order: 'desc' | 'asc' }): string {
  const metric = d.metric === 'custom' ? "the dataset's evaluation.py" : d.metric;
  return `${d.name} · ${metric} · ${d.order === 'desc' ? 'higher' : 'lower'} is better`;
}

/** A leaderboard's Model: `/DATASET/N/CHECKPOINT`, as NSML's board showed it. */
export function boardModel(r: { name: string; model: string }): string {
  const [, dataset, number] = r.name.split('/');
  return `/${dataset}/${number}/${r.model}`;
}

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
