import { ApiError, authHeaders, errorOf } from './api.js';
import { API_PREFIX, LogFollower, reconnectDelay, sessionPath, type LogEnd, type LogRecord } from './wire.js';

/** The first connection shows the end of a long log; what follows streams whole. */
const FIRST_TAIL = 1000;

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
  const follower = new LogFollower();
  let stopped = false;
  let abort = new AbortController();
  let attempt = 0;

  const connectOnce = async (): Promise<'ended' | 'dropped'> => {
    abort = new AbortController();
    const headers: Record<string, string> = { ...authHeaders(), accept: 'text/event-stream' };
    if (follower.lastId !== undefined) headers['last-event-id'] = String(follower.lastId);
    const query = follower.lastId === undefined ? `follow=1&tail=${FIRST_TAIL}` : 'follow=1';
    const res = await fetch(`${API_PREFIX}${sessionPath(name)}/logs?${query}`, { headers, signal: abort.signal });
    if (!res.ok) throw await errorOf(res);
    listener.onState('live');
    attempt = 0;
    let ended = false;
    let batch: LogRecord[] = [];
    const parser = follower.parser(
      (record) => batch.push(record),
      (end: LogEnd) => {
        ended = true;
        listener.onEnd(end);
      },
    );
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
      attempt += 1;
      await new Promise((resolve) => setTimeout(resolve, reconnectDelay(attempt)));
    }
  })();

  return () => {
    stopped = true;
    abort.abort();
  };
}
