import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { MetricPoint, MetricsPage } from '../../protocol/types.js';

/** What the nsml runtime wrote to the session's events file, folded into a state. */
export interface EventState {
  lastSummary: Record<string, number> | null;
  /** Per checkpoint: when it was last saved (epoch ms) and the summary reported before it. */
  saves: Map<string, { at: number; summary: Record<string, number> | null }>;
  pausedAt: number | null;
  loadSeconds: number | null;
  inferSeconds: number | null;
}

// The file is written by participant code: anything may be in it, so every field is checked.
const MAX_EVENT_LINE = 64 * 1024;
/** What is read into memory at once. */
const READ_CHUNK = 1024 * 1024;

const emptyState = (): EventState => ({ lastSummary: null, saves: new Map(), pausedAt: null, loadSeconds: null, inferSeconds: null });

function numbers(value: unknown): Record<string, number> | null {
  if (!value || typeof value !== 'object') return null;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

function apply(state: EventState, event: Record<string, unknown>): void {
  const at = typeof event.ts === 'number' ? event.ts * 1000 : Date.now();
  const seconds = typeof event.seconds === 'number' ? event.seconds : null;
  switch (event.event) {
    case 'report':
      if (event.summary === true) state.lastSummary = { ...state.lastSummary, ...numbers(event.metrics) };
      break;
    case 'save':
      if (typeof event.checkpoint === 'string') state.saves.set(event.checkpoint, { at, summary: state.lastSummary });
      break;
    case 'paused':
      state.pausedAt ??= at;
      break;
    case 'loaded':
      state.loadSeconds = seconds;
      break;
    case 'inferred':
      state.inferSeconds = seconds;
      break;
  }
}

/**
 * Calls `onEvent` with each complete, well-formed line of the events file from byte `offset`,
 * reading at most `maxBytes` (whole lines; Infinity: to the end). Returns the offset read to (a
 * line not complete yet is left for the next read), and whether the file goes on past `maxBytes`.
 */
function readEvents(
  file: string,
  offset: number,
  maxBytes: number,
  onEvent: (event: Record<string, unknown>) => void,
): { offset: number; cut: boolean } {
  // One stat when nothing is new (most reads: every `ps` and dashboard listing reads each
  // session's file); the file is opened only to read what it gained.
  const size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  if (size <= offset) return { offset, cut: false };
  const until = Math.min(size, offset + maxBytes);
  const cut = until < size;
  const fd = openSync(file, 'r');
  try {
    // In bounded chunks: the file is the participant's, and may be as large as its disk allows.
    const buffer = Buffer.alloc(Math.min(READ_CHUNK, Math.max(until - offset, 0)));
    while (until > offset) {
      const got = readSync(fd, buffer, 0, Math.min(buffer.length, until - offset), offset);
      const end = buffer.subarray(0, got).lastIndexOf(10);
      if (end < 0) {
        // The last line is not complete yet: read again later.
        if (got < READ_CHUNK) break;
        // A whole chunk without a line end is one overlong line: skipped (what follows it up
        // to the next line end fails to parse and is skipped too).
        offset += got;
        continue;
      }
      for (const line of buffer.subarray(0, end).toString('utf8').split('\n')) {
        if (!line || line.length > MAX_EVENT_LINE) continue;
        try {
          const event = JSON.parse(line) as unknown;
          if (event && typeof event === 'object') onEvent(event as Record<string, unknown>);
        } catch {
          // A line the runtime did not write: skipped.
        }
      }
      offset += end + 1;
    }
  } finally {
    closeSync(fd);
  }
  return { offset, cut };
}

/**
 * The metrics `nsml.report` recorded, from byte `offset` of the events file, about 1 MiB at a
 * time: the dashboard asks again from the returned offset for what came since.
 */
export function readReports(file: string, offset: number): MetricsPage {
  const points: MetricPoint[] = [];
  const read = readEvents(file, offset, READ_CHUNK, (event) => {
    if (event.event !== 'report') return;
    const metrics = numbers(event.metrics);
    if (!metrics || Object.keys(metrics).length === 0) return;
    const step = typeof event.step === 'number' && Number.isFinite(event.step) ? event.step : null;
    points.push({ step, ts: typeof event.ts === 'number' ? Math.round(event.ts * 1000) : null, metrics });
  });
  return { offset: read.offset, points, more: read.cut };
}

/**
 * Reads each session's events file incrementally: a session's state is kept with the offset it
 * was read to, so `ps` and a submit's watcher only parse what is new.
 */
export class SessionEvents {
  private readonly cache = new Map<string, { offset: number; state: EventState }>();

  read(file: string): EventState {
    const entry = this.cache.get(file) ?? { offset: 0, state: emptyState() };
    entry.offset = readEvents(file, entry.offset, Infinity, (event) => apply(entry.state, event)).offset;
    this.cache.set(file, entry);
    return entry.state;
  }

  forget(file: string): void {
    this.cache.delete(file);
  }
}
