import { EventEmitter } from 'node:events';
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { LogRecord, LogStream } from '../../protocol/types.js';

/** A line longer than this is split, so one runaway print cannot make a record unbounded. */
export const MAX_LOG_LINE_CHARS = 16 * 1024;

/** One index entry per this many records: where record k·INDEX_EVERY + 1 starts. */
export const INDEX_EVERY = 1024;

interface Writer {
  fd: number;
  /** Records in the log, and its size in bytes. */
  count: number;
  size: number;
  /** The index file, appended to as records cross each INDEX_EVERY. */
  indexFd: number;
}

/**
 * Each session's log is an append-only file of JSON lines, one record per line; a record's id is
 * its 1-based line number. A record is on disk (written synchronously) before anyone is told about
 * it, so what a client was sent survives a server restart. Beside it, a sparse index (8 bytes per
 * INDEX_EVERY records) says where every INDEX_EVERY-th record starts: a tail, a resume and a
 * count seek there and read at most INDEX_EVERY records, however long the log.
 */
export class LogStore {
  private readonly writers = new Map<number, Writer>();
  /** Counts of closed logs, by the size they were counted at. */
  private readonly counts = new Map<number, { size: number; count: number }>();
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

  indexFile(sessionId: number): string {
    return join(this.dir, `${sessionId}.idx`);
  }

  /**
   * Opens the session's log for appending: its count, size and index are recovered from disk,
   * and a last line a crash cut short is dropped, so the next record starts on a line of its own.
   */
  async open(sessionId: number): Promise<void> {
    if (this.writers.has(sessionId)) return;
    const cursor = await this.end(sessionId);
    const fd = openSync(this.file(sessionId), 'a', 0o600);
    if (fstatSync(fd).size > cursor.offset) ftruncateSync(fd, cursor.offset);
    this.writers.set(sessionId, { fd, count: cursor.id, size: cursor.offset, indexFd: openSync(this.indexFile(sessionId), 'a', 0o600) });
  }

  /**
   * Appends `lines` as records. `marks[i]`, where given, is kept with line i (on its last record,
   * never sent to readers): where the line's source stood after it, so that a run followed again
   * after a crash resumes exactly after the last line on disk (lastMark).
   */
  append(sessionId: number, stream: LogStream, lines: string[], marks?: unknown[]): void {
    const w = this.writers.get(sessionId);
    if (!w || lines.length === 0) return;
    const ts = new Date(this.now()).toISOString();
    const chunks: Buffer[] = [];
    const starts: number[] = [];
    let size = w.size;
    for (const [n, whole] of lines.entries()) {
      for (let i = 0; i === 0 || i < whole.length; i += MAX_LOG_LINE_CHARS) {
        w.count += 1;
        if ((w.count - 1) % INDEX_EVERY === 0) starts.push(size);
        const record: StoredRecord = { id: w.count, ts, stream, line: whole.slice(i, i + MAX_LOG_LINE_CHARS) };
        if (marks?.[n] !== undefined && i + MAX_LOG_LINE_CHARS >= whole.length) record.at = marks[n];
        const bytes = Buffer.from(`${JSON.stringify(record)}\n`);
        chunks.push(bytes);
        size += bytes.length;
      }
    }
    writeSync(w.fd, Buffer.concat(chunks));
    w.size = size;
    // After the records it points into: an entry never names bytes that are not on disk.
    if (starts.length > 0) writeSync(w.indexFd, offsets(starts));
    this.events.emit(`append:${sessionId}`, w.count);
  }

  /** Closes the log and wakes every follower so it can send the end of the stream. */
  close(sessionId: number): void {
    const w = this.writers.get(sessionId);
    if (w) {
      closeSync(w.fd);
      closeSync(w.indexFd);
    }
    this.writers.delete(sessionId);
    this.events.emit(`end:${sessionId}`);
  }

  remove(sessionId: number): void {
    this.close(sessionId);
    this.counts.delete(sessionId);
    rmSync(this.file(sessionId), { force: true });
    rmSync(this.indexFile(sessionId), { force: true });
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
    // A closed log changes only by being removed or reopened: its count is kept for its size.
    const size = statSync(this.file(sessionId), { throwIfNoEntry: false })?.size ?? 0;
    const known = this.counts.get(sessionId);
    if (known?.size === size) return known.count;
    const end = await this.end(sessionId);
    this.counts.set(sessionId, { size, count: end.id });
    return end.id;
  }

  /** A cursor from which `read` yields the records after `id`, found through the index: no scan from the start. */
  cursorAfter(sessionId: number, id: number): LogCursor {
    const starts = this.index(sessionId);
    const block = Math.min(Math.floor(id / INDEX_EVERY), starts.length - 1);
    return block < 0 ? { offset: 0, id } : { offset: starts[block]!, id, at: block * INDEX_EVERY + 1 };
  }

  /** The cursor after the last whole record: the count and the size a writer continues from. */
  private async end(sessionId: number): Promise<LogCursor> {
    const starts = this.index(sessionId);
    const last = starts.length - 1;
    const cursor: LogCursor = last < 0 ? { offset: 0, id: 0 } : { offset: starts[last]!, id: last * INDEX_EVERY };
    const more: number[] = [];
    // Each record read starts where the one before it ended.
    let start = cursor.offset;
    for await (const record of this.read(sessionId, cursor)) {
      // The record at the last entry is read again: its entry is there already.
      if ((record.id - 1) % INDEX_EVERY === 0 && (record.id - 1) / INDEX_EVERY > last) more.push(start);
      start = cursor.offset;
    }
    // Entries a stop kept from the index (or a log from before there was one) are added now.
    if (more.length > 0) writeFileSync(this.indexFile(sessionId), offsets(more), { flag: 'a', mode: 0o600 });
    return cursor;
  }

  /**
   * The mark of the last record that has one (see append), or undefined: read back from the end a
   * block of INDEX_EVERY records at a time, so a long log costs one block when its end has marks.
   */
  async lastMark(sessionId: number): Promise<unknown> {
    const starts = this.index(sessionId);
    if (starts.length === 0) starts.push(0);
    for (let block = starts.length - 1; block >= 0; block--) {
      const until = block === starts.length - 1 ? Infinity : (block + 1) * INDEX_EVERY;
      let mark: unknown;
      for await (const record of this.records(sessionId, { offset: starts[block]!, id: block * INDEX_EVERY }, true)) {
        if (record.id > until) break;
        if (record.at !== undefined) mark = record.at;
      }
      if (mark !== undefined) return mark;
    }
    return undefined;
  }

  /** Where each INDEX_EVERY-th record starts. */
  private index(sessionId: number): number[] {
    let data: Buffer;
    try {
      data = readFileSync(this.indexFile(sessionId));
    } catch {
      return [];
    }
    const starts: number[] = [];
    for (let i = 0; i + 8 <= data.length; i += 8) starts.push(Number(data.readBigUInt64LE(i)));
    return starts;
  }

  /**
   * Yields the records after `cursor.id` that are on disk now, each exactly once and in order,
   * advancing the cursor; a follower keeps its cursor, so each wake-up reads only what is new.
   */
  read(sessionId: number, cursor: LogCursor): AsyncGenerator<LogRecord> {
    return this.records(sessionId, cursor, false);
  }

  private async *records(sessionId: number, cursor: LogCursor, withMarks: boolean): AsyncGenerator<StoredRecord> {
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
          if (cursor.at !== undefined) {
            // Ids run 1, 2, 3… line by line: a seek skips to its record without parsing the rest.
            if (cursor.at++ <= cursor.id) continue;
            cursor.at = undefined;
          }
          const record = JSON.parse(line.toString('utf8')) as StoredRecord;
          if (record.id <= cursor.id) continue;
          if (!withMarks) delete record.at;
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
  /** The id of the record at `offset`, when known (a seek): records up to `id` are skipped unparsed. */
  at?: number;
}

const READ_CHUNK_BYTES = 64 * 1024;

/** A record as stored: what readers get, and the mark of its line's source (see append). */
type StoredRecord = LogRecord & { at?: unknown };

function offsets(values: number[]): Buffer {
  const buffer = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => buffer.writeBigUInt64LE(BigInt(v), i * 8));
  return buffer;
}
