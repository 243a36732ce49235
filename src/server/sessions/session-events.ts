import { lstat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { formatSize } from '../../protocol/sizes.js';
import type { MetricPoint, MetricsPage } from '../../protocol/types.js';
import { DEFAULT_MAX_EVENTS_BYTES } from '../config.js';
import { openFile, readChunks, READ_CHUNK, UntrustedFileError } from '../untrusted/session-files.js';

/** What the nsml runtime wrote to the session's events file, folded into a state. */
export interface EventState {
  lastSummary: Record<string, number> | null;
  /** Per checkpoint: when it was last saved (epoch ms) and the summary reported before it. */
  saves: Map<string, { at: number; summary: Record<string, number> | null }>;
  pausedAt: number | null;
  loadSeconds: number | null;
  inferSeconds: number | null;
  /** Why the file is not read (a link or a FIFO in its place), or read only up to its cap. */
  problem: string | null;
}

// The file is written by participant code: anything may be in it, so every field is checked.
const MAX_EVENT_LINE = 64 * 1024;

const emptyState = (): EventState => ({ lastSummary: null, saves: new Map(), pausedAt: null, loadSeconds: null, inferSeconds: null, problem: null });

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

/** How far a read of the events file got. */
interface ReadResult {
  offset: number;
  /** The file goes on past what was read this time (more than `maxBytes` was new). */
  cut: boolean;
  /** Why the file was not read, or read only up to its cap. */
  problem: string | null;
}

type Opened = { ino: number; read: (offset: number, maxBytes: number, onEvent: (event: Record<string, unknown>) => void) => Promise<ReadResult> };

/**
 * Opens the events file through the untrusted reader (a link, a FIFO or a folder in its place
 * is not read) and hands `use` a reader of its complete, well-formed lines: from byte `offset`,
 * at most `maxBytes` (whole lines) and never past `capBytes` from its start, in chunks,
 * asynchronously, stopping at its real end whatever its size says. A line not complete yet is
 * left for the next read. Without a file to read, `use` gets the reason (null: none written yet).
 */
async function withEventsFile<T>(file: string, capBytes: number, use: (opened: Opened | { problem: string | null }) => Promise<T>): Promise<T> {
  let opened: Awaited<ReturnType<typeof openFile>>;
  try {
    opened = await openFile(dirname(file), basename(file));
  } catch (err) {
    if (!(err instanceof UntrustedFileError)) throw err;
    return use({ problem: err.why === 'missing' ? null : `events file refused: ${err.message}` });
  }
  const { handle, stat } = opened;
  const problem = stat.size > capBytes ? `events file over its limit (${formatSize(capBytes)})` : null;
  const read = async (offset: number, maxBytes: number, onEvent: (event: Record<string, unknown>) => void): Promise<ReadResult> => {
    const until = Math.min(stat.size, capBytes, offset + maxBytes);
    const cut = until < Math.min(stat.size, capBytes);
    while (until > offset) {
      // Each chunk's complete lines are parsed; a partial last line is read again with the next chunk.
      let end = -1;
      const got = await readChunks(handle, offset, Math.min(READ_CHUNK, until - offset), (chunk) => {
        end = chunk.lastIndexOf(10);
        if (end >= 0) parseLines(chunk.subarray(0, end), onEvent);
        return 'stop';
      });
      if (got === 0) break;
      if (end < 0) {
        // The last line is not complete yet: read again later.
        if (got < READ_CHUNK) break;
        // A whole chunk without a line end is one overlong line: skipped (what follows it up
        // to the next line end fails to parse and is skipped too).
        offset += got;
        continue;
      }
      offset += end + 1;
    }
    return { offset, cut, problem };
  };
  try {
    return await use({ ino: stat.ino, read });
  } finally {
    await handle.close();
  }
}

function parseLines(bytes: Buffer, onEvent: (event: Record<string, unknown>) => void): void {
  for (const line of bytes.toString('utf8').split('\n')) {
    if (!line || line.length > MAX_EVENT_LINE) continue;
    try {
      const event = JSON.parse(line) as unknown;
      if (event && typeof event === 'object') onEvent(event as Record<string, unknown>);
    } catch {
      // A line the runtime did not write: skipped.
    }
  }
}

/**
 * The metrics `nsml.report` recorded, from byte `offset` of the events file, about 1 MiB at a
 * time: the dashboard asks again from the returned offset for what came since.
 */
export async function readReports(file: string, offset: number, capBytes = DEFAULT_MAX_EVENTS_BYTES): Promise<MetricsPage> {
  const points: MetricPoint[] = [];
  const read = await withEventsFile(file, capBytes, async (opened) => {
    if (!('read' in opened)) return { offset, cut: false };
    return opened.read(offset, READ_CHUNK, (event) => {
    if (event.event !== 'report') return;
    const metrics = numbers(event.metrics);
    if (!metrics || Object.keys(metrics).length === 0) return;
    const step = typeof event.step === 'number' && Number.isFinite(event.step) ? event.step : null;
      points.push({ step, ts: typeof event.ts === 'number' ? Math.round(event.ts * 1000) : null, metrics });
    });
  });
  return { offset: read.offset, points, more: read.cut };
}

interface Entry {
  offset: number;
  ino: number | null;
  state: EventState;
  /** The read in progress: reads of one file run one after the other. */
  pending: Promise<unknown>;
}

/**
 * Reads each session's events file incrementally: a session's state is kept with the offset it
 * was read to, so `ps` and a submit's watcher only parse what is new. Reads of one file are
 * queued, so each line is applied once; a file replaced by another is read again from its start.
 */
export class SessionEvents {
  private readonly cache = new Map<string, Entry>();

  constructor(private readonly capBytes = DEFAULT_MAX_EVENTS_BYTES) {}

  read(file: string): Promise<EventState> {
    let entry = this.cache.get(file);
    if (!entry) {
      entry = { offset: 0, ino: null, state: emptyState(), pending: Promise.resolve() };
      this.cache.set(file, entry);
    }
    const current = entry;
    const next = current.pending.then(() => this.advance(file, current));
    current.pending = next.catch(() => {});
    return next;
  }

  private async advance(file: string, entry: Entry): Promise<EventState> {
    // Most reads find nothing new (every `ps` and dashboard listing reads each session's file):
    // one lstat tells, following no link. The folder above is the server's.
    const st = await lstat(file).catch(() => undefined);
    if (st?.isFile() && st.ino === entry.ino && st.size === entry.offset && entry.state.problem === null) {
      return entry.state;
    }
    return withEventsFile(file, this.capBytes, async (opened) => {
      if (!('read' in opened)) {
        entry.state.problem = opened.problem;
        return entry.state;
      }
      if (entry.ino !== null && entry.ino !== opened.ino) {
        entry.offset = 0;
        entry.state = emptyState();
      }
      entry.ino = opened.ino;
      const read = await opened.read(entry.offset, Infinity, (event) => apply(entry.state, event));
      entry.offset = read.offset;
      entry.state.problem = read.problem;
      return entry.state;
    });
  }

  /** The reports from byte `offset`, about 1 MiB at a time (readReports), within this cap. */
  reports(file: string, offset: number): Promise<MetricsPage> {
    return readReports(file, offset, this.capBytes);
  }

  forget(file: string): void {
    this.cache.delete(file);
  }
}
