import { LogFollower, reconnectDelay } from '../../protocol/log-follow.js';
import { sessionPath, type SessionName } from '../../protocol/session-name.js';
import type { LogEnd, LogRecord } from '../../protocol/types.js';
import { ApiError, type ApiClient } from './client.js';

export interface LogStreamOptions {
  name: SessionName;
  follow: boolean;
  tail?: number;
  onRecord: (record: LogRecord) => void;
  /** Resolves when what onRecord wrote has gone out: the stream is read no faster than the output is. */
  drained?: () => Promise<void>;
  /** Told when the connection dropped and when it is back, so the user knows why output paused. */
  onReconnect?: (attempt: number, delayMs: number, reason: string) => void;
  sleep: (ms: number) => Promise<void>;
  signal?: AbortSignal;
}

/**
 * Prints a session's log through the SSE stream. Following, it reconnects by itself with
 * bounded back-off and resumes with Last-Event-ID; records at or below the last id seen are
 * dropped, so no line is printed twice and none is skipped. Resolves with the `end` event's
 * data, or undefined when not following and the log was read to its current end.
 */
export async function streamLog(api: ApiClient, opts: LogStreamOptions): Promise<LogEnd | undefined> {
  const follower = new LogFollower();
  let attempt = 0;
  for (;;) {
    let end: LogEnd | undefined;
    let progressed = false;
    let reason = 'the stream closed';
    try {
      const response = await api.stream({
        method: 'GET',
        url: `${sessionPath(opts.name)}/logs`,
        params: { follow: opts.follow ? '1' : undefined, tail: follower.lastId === undefined ? opts.tail : undefined },
        headers: { Accept: 'text/event-stream', ...(follower.lastId !== undefined ? { 'Last-Event-ID': String(follower.lastId) } : {}) },
        timeout: 0,
        signal: opts.signal,
      });
      const parser = follower.parser(
        (record) => {
          progressed = true;
          opts.onRecord(record);
        },
        (ended) => (end = ended),
      );
      // Decoded by the stream, so a character split between two chunks arrives whole.
      response.body.setEncoding('utf8');
      for await (const chunk of response.body) {
        parser.feed(chunk as string);
        await opts.drained?.();
      }
      if (end || !opts.follow) return end;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const error = err as Error;
      // A refusal (4xx) stays a refusal; a server error or a server going away may pass.
      if (error instanceof ApiError && error.status < 500) throw error;
      if (end) return end;
      if (!opts.follow) throw error;
      reason = error.message;
    }
    // Dropped, or closed without an `end` (the server going away): come back after a pause
    // that doubles while nothing arrives.
    attempt = progressed ? 1 : attempt + 1;
    const delay = reconnectDelay(attempt);
    opts.onReconnect?.(attempt, delay, reason);
    await opts.sleep(delay);
  }
}
