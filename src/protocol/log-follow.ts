import { createParser, type EventSourceParser } from 'eventsource-parser';
import { backoff } from './retry.js';
import { LOG_EVENT_END, type LogEnd, type LogRecord } from './types.js';

/** Reconnecting to a log stream: a pause doubling from 0.25 s, at most 5 s. */
export const RECONNECT_BASE_MS = 250;
export const RECONNECT_MAX_MS = 5_000;

/** The pause before the `attempt`-th reconnection in a row (1-based). */
export function reconnectDelay(attempt: number): number {
  return backoff(attempt, RECONNECT_BASE_MS, RECONNECT_MAX_MS);
}

/**
 * Reads a session's log stream (SSE) across reconnections, the same in the CLI and the
 * dashboard: `lastId` is what to resume from (`Last-Event-ID`), and a record at or below it is
 * dropped, so a resumed stream never shows a line twice.
 */
export class LogFollower {
  lastId: number | undefined;

  /** A parser for one connection's text: records go to `onRecord`, the `end` event to `onEnd`. */
  parser(onRecord: (record: LogRecord) => void, onEnd: (end: LogEnd) => void): EventSourceParser {
    return createParser({
      onEvent: (event) => {
        if (event.event === LOG_EVENT_END) return onEnd(JSON.parse(event.data) as LogEnd);
        const record = JSON.parse(event.data) as LogRecord;
        if (this.lastId !== undefined && record.id <= this.lastId) return;
        this.lastId = record.id;
        onRecord(record);
      },
    });
  }
}
