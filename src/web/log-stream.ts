import { createParser } from 'eventsource-parser';
import { ApiError, authHeaders, errorOf, sessionPath } from './api.js';
import { API_PREFIX, LOG_EVENT_END, type LogEnd, type LogRecord } from './wire.js';

/** The first connection shows the end of a long log; what follows streams whole. */
const FIRST_TAIL = 1000;
const MAX_DELAY_MS = 5000;

export interface LogListener {
  onRecords(records: LogRecord[]): void;
  onEnd(end: LogEnd): void;
  /** `live` once connected, `reconnecting` while the connection is down. */
  onState(state: 'live' | 'reconnecting'): void;
  /** The server refused the stream (a missing session, a real submit's output): no retry. */
  onRefused(error: ApiError): void;
}

/**
 * Follows a session's log over the same SSE stream the CLI reads, sent with the Authorization
 * header (so not EventSource, which cannot send one). A dropped connection is resumed with
 * `Last-Event-ID`, after bounded, growing delays; a record at or before the last one seen is
 * never shown twice. Returns the function that stops following.
 */
export function followLog(name: string, listener: LogListener): () => void {
  let lastId: number | undefined;
  let stopped = false;
  let abort = new AbortController();
  let delay = 250;

  const connectOnce = async (): Promise<'ended' | 'dropped'> => {
    abort = new AbortController();
    const headers: Record<string, string> = { ...authHeaders(), accept: 'text/event-stream' };
    if (lastId !== undefined) headers['last-event-id'] = String(lastId);
    const query = lastId === undefined ? `follow=1&tail=${FIRST_TAIL}` : 'follow=1';
    const res = await fetch(`${API_PREFIX}${sessionPath(name)}/logs?${query}`, { headers, signal: abort.signal });
    if (!res.ok) throw await errorOf(res);
    listener.onState('live');
    delay = 250;
    let ended = false;
    let batch: LogRecord[] = [];
    const parser = createParser({
      onEvent(event) {
        if (event.event === LOG_EVENT_END) {
          ended = true;
          listener.onEnd(JSON.parse(event.data) as LogEnd);
          return;
        }
        const record = JSON.parse(event.data) as LogRecord;
        if (lastId !== undefined && record.id <= lastId) return;
        lastId = record.id;
        batch.push(record);
      },
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
      // One render per chunk that arrived, however many lines it held.
      if (batch.length > 0) {
        listener.onRecords(batch);
        batch = [];
      }
    }
    return ended ? 'ended' : 'dropped';
  };

  void (async () => {
    while (!stopped) {
      try {
        if ((await connectOnce()) === 'ended') return;
      } catch (err) {
        if (stopped) return;
        if (err instanceof ApiError && err.status < 500) {
          listener.onRefused(err);
          return;
        }
      }
      if (stopped) return;
      listener.onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  })();

  return () => {
    stopped = true;
    abort.abort();
  };
}
