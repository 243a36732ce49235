import type { IncomingMessage } from 'node:http';
import { createParser } from 'eventsource-parser';
import { formatSessionName, type SessionName } from '../../protocol/session-name.js';
import { LOG_EVENT_END, type LogEnd, type LogRecord } from '../../protocol/types.js';
import { ApiError, apiErrorFromBody, toApiError, type ApiClient } from './client.js';

export const RECONNECT_BASE_MS = 250;
export const RECONNECT_MAX_MS = 5_000;

export interface LogStreamOptions {
  name: SessionName;
  follow: boolean;
  tail?: number;
  onRecord: (record: LogRecord) => void;
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
  let lastId: number | undefined;
  let attempt = 0;
  for (;;) {
    let end: LogEnd | undefined;
    let progressed = false;
    let reason = 'the stream closed';
    try {
      const response = await api.http.request<IncomingMessage>({
        method: 'GET',
        url: `/sessions/${formatSessionName(opts.name)}/logs`,
        params: { follow: opts.follow ? '1' : undefined, tail: lastId === undefined ? opts.tail : undefined },
        headers: { Accept: 'text/event-stream', ...(lastId !== undefined ? { 'Last-Event-ID': String(lastId) } : {}) },
        responseType: 'stream',
        timeout: 0,
        signal: opts.signal,
        validateStatus: () => true,
      });
      if (response.status !== 200) throw await refusal(response.status, response.statusText, response.data);
      const parser = createParser({
        onEvent: (event) => {
          if (event.event === LOG_EVENT_END) {
            end = JSON.parse(event.data) as LogEnd;
            return;
          }
          const record = JSON.parse(event.data) as LogRecord;
          if (lastId !== undefined && record.id <= lastId) return;
          lastId = record.id;
          progressed = true;
          opts.onRecord(record);
        },
      });
      // Decoded by the stream, so a character split between two chunks arrives whole.
      response.data.setEncoding('utf8');
      for await (const chunk of response.data) parser.feed(chunk as string);
      if (end || !opts.follow) return end;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const error = err instanceof ApiError ? err : toApiError(err, api.server);
      // A refusal (4xx) stays a refusal; a server error or a server going away may pass.
      if (error instanceof ApiError && error.status < 500) throw error;
      if (end) return end;
      if (!opts.follow) throw error;
      reason = error.message;
    }
    // Dropped, or closed without an `end` (the server going away): come back after a pause
    // that doubles while nothing arrives, up to RECONNECT_MAX_MS.
    attempt = progressed ? 1 : attempt + 1;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** (attempt - 1));
    opts.onReconnect?.(attempt, delay, reason);
    await opts.sleep(delay);
  }
}

async function refusal(status: number, statusText: string, body: IncomingMessage): Promise<ApiError> {
  let text = '';
  body.setEncoding('utf8');
  for await (const chunk of body) text += chunk as string;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  return apiErrorFromBody(status, statusText, data);
}
