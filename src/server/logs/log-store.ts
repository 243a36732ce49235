import { EventEmitter } from 'node:events';
import { closeSync, existsSync, fstatSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { LogRecord, LogStream } from '../../protocol/types.js';

/** A line longer than this is split, so one runaway print cannot make a record unbounded. */
export const MAX_LOG_LINE_CHARS = 16 * 1024;

/**
 * Each session's log is an append-only file of JSON lines, one record per line; a record's id is
 * its 1-based line number. A record is on disk (written synchronously) before anyone is told about
 * it, so what a client was sent survives a server restart.
 */
export class LogStore {
  private readonly writers = new Map<number, { fd: number; count: number }>();
  private readonly events = new EventEmitter();

  constructor(
    private readonly dir: string,
    private readonly now: () => number,
  ) {
    this.events.setMaxListeners(0);
  }

  file(sessionId: number): string {
    return join(this.dir, `${sessionId}.log`);
  }

  /** Opens the session's log for appending; the count of existing records is recovered from disk. */
  async open(sessionId: number): Promise<void> {
    if (this.writers.has(sessionId)) return;
    const count = await this.count(sessionId);
    this.writers.set(sessionId, { fd: openSync(this.file(sessionId), 'a', 0o600), count });
  }

  append(sessionId: number, stream: LogStream, lines: string[]): void {
    const w = this.writers.get(sessionId);
    if (!w || lines.length === 0) return;
    const ts = new Date(this.now()).toISOString();
    let text = '';
    for (const whole of lines) {
      for (let i = 0; i === 0 || i < whole.length; i += MAX_LOG_LINE_CHARS) {
        w.count += 1;
        const record: LogRecord = { id: w.count, ts, stream, line: whole.slice(i, i + MAX_LOG_LINE_CHARS) };
        text += `${JSON.stringify(record)}\n`;
      }
    }
    writeSync(w.fd, text);
    this.events.emit(`append:${sessionId}`, w.count);
  }

  /** Closes the log and wakes every follower so it can send the end of the stream. */
  close(sessionId: number): void {
    const w = this.writers.get(sessionId);
    if (w) closeSync(w.fd);
    this.writers.delete(sessionId);
    this.events.emit(`end:${sessionId}`);
  }

  remove(sessionId: number): void {
    this.close(sessionId);
    rmSync(this.file(sessionId), { force: true });
  }

  /** Calls `listener` on every append to or end of the session's log; returns the unsubscribe. */
  watch(sessionId: number, listener: () => void): () => void {
    this.events.on(`append:${sessionId}`, listener);
    this.events.on(`end:${sessionId}`, listener);
    return () => {
      this.events.off(`append:${sessionId}`, listener);
      this.events.off(`end:${sessionId}`, listener);
    };
  }

  async count(sessionId: number): Promise<number> {
    const open = this.writers.get(sessionId);
    if (open) return open.count;
    const cursor: LogCursor = { offset: 0, id: 0 };
    for await (const _ of this.read(sessionId, cursor)) void _;
    return cursor.id;
  }

  /**
   * Yields the records after `cursor.id` that are on disk now, each exactly once and in order,
   * advancing the cursor; a follower keeps its cursor, so each wake-up reads only what is new.
   */
  async *read(sessionId: number, cursor: LogCursor): AsyncGenerator<LogRecord> {
    const file = this.file(sessionId);
    if (!existsSync(file)) return;
    const fd = openSync(file, 'r');
    try {
      const end = fstatSync(fd).size;
      const buffer = Buffer.alloc(READ_CHUNK_BYTES);
      let carry = Buffer.alloc(0);
      let position = cursor.offset;
      while (position < end) {
        const n = readSync(fd, buffer, 0, Math.min(buffer.length, end - position), position);
        position += n;
        let data = Buffer.concat([carry, buffer.subarray(0, n)]);
        let nl: number;
        while ((nl = data.indexOf(10)) !== -1) {
          const line = data.subarray(0, nl);
          data = data.subarray(nl + 1);
          cursor.offset += nl + 1;
          const record = JSON.parse(line.toString('utf8')) as LogRecord;
          if (record.id <= cursor.id) continue;
          cursor.id = record.id;
          yield record;
        }
        carry = Buffer.from(data);
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** A reader's place in a log: the byte offset after the last whole record read, and its id. */
export interface LogCursor {
  offset: number;
  id: number;
}

const READ_CHUNK_BYTES = 64 * 1024;
