import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogRecord } from '../../protocol/types.js';
import { INDEX_EVERY, LogStore, MAX_LOG_LINE_CHARS, type LogCursor } from './log-store.js';

let dir: string;
let store: LogStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'khd-logs-'));
  store = new LogStore(dir, () => Date.UTC(2026, 0, 1));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(id: number, cursor: LogCursor): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of store.read(id, cursor)) out.push(r);
  return out;
}

describe('LogStore', () => {
  it('numbers records from 1 and keeps the stream of each', async () => {
    await store.open(1);
    store.append(1, 'stdout', ['a', 'b']);
    store.append(1, 'stderr', ['oops']);
    const records = await readAll(1, { offset: 0, id: 0 });
    expect(records.map((r) => [r.id, r.stream, r.line])).toEqual([[1, 'stdout', 'a'], [2, 'stdout', 'b'], [3, 'stderr', 'oops']]);
    expect(records[0]!.ts).toBe('2026-01-01T00:00:00.000Z');
  });

  it('resuming after any id gives every later line exactly once, in order', async () => {
    await store.open(1);
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i + 1} ${'é'.repeat(i % 7)}`);
    for (let i = 0; i < lines.length; i += 3) store.append(1, i % 2 ? 'stderr' : 'stdout', lines.slice(i, i + 3));
    for (let after = 0; after <= 50; after++) {
      const records = await readAll(1, { offset: 0, id: after });
      expect(records.map((r) => r.id)).toEqual(Array.from({ length: 50 - after }, (_, i) => after + i + 1));
      expect(records.map((r) => r.line)).toEqual(lines.slice(after));
    }
  });

  it('a kept cursor reads only what was appended since, across many wake-ups', async () => {
    await store.open(1);
    const cursor: LogCursor = { offset: 0, id: 0 };
    const seen: number[] = [];
    for (let round = 0; round < 20; round++) {
      store.append(1, 'stdout', [`r${round}a`, `r${round}b`]);
      for (const r of await readAll(1, cursor)) seen.push(r.id);
    }
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it('recovers the count from disk after a restart and keeps numbering from there', async () => {
    await store.open(7);
    store.append(7, 'stdout', ['one', 'two']);
    store.close(7);
    const again = new LogStore(dir, Date.now);
    expect(await again.count(7)).toBe(2);
    await again.open(7);
    again.append(7, 'stdout', ['three']);
    const records: LogRecord[] = [];
    for await (const r of again.read(7, { offset: 0, id: 0 })) records.push(r);
    expect(records.map((r) => `${r.id}:${r.line}`)).toEqual(['1:one', '2:two', '3:three']);
  });

  it('splits a runaway line so that no record is unbounded', async () => {
    await store.open(1);
    store.append(1, 'stdout', ['x'.repeat(MAX_LOG_LINE_CHARS * 2 + 5)]);
    const records = await readAll(1, { offset: 0, id: 0 });
    expect(records.map((r) => r.line.length)).toEqual([MAX_LOG_LINE_CHARS, MAX_LOG_LINE_CHARS, 5]);
  });

  it('keeps an empty line as a record', async () => {
    await store.open(1);
    store.append(1, 'stdout', ['', 'after']);
    expect((await readAll(1, { offset: 0, id: 0 })).map((r) => r.line)).toEqual(['', 'after']);
  });

  it('tells watchers about appends and the end', async () => {
    await store.open(3);
    let calls = 0;
    const stop = store.watch(3, () => calls++);
    store.append(3, 'stdout', ['x']);
    store.close(3);
    stop();
    store.append(3, 'stdout', ['ignored after close']);
    expect(calls).toBe(2);
  });

  describe('the index', () => {
    const N = INDEX_EVERY * 5 + 17;
    async function longLog(id: number): Promise<void> {
      await store.open(id);
      // In batches of uneven sizes, so index entries fall inside batches and between them.
      for (let i = 0; i < N; i += 333) store.append(id, 'stdout', Array.from({ length: Math.min(333, N - i) }, (_, j) => `line ${i + j + 1}`));
    }

    it('seeks a tail or a resume to within one block, for any id, and reads exactly the later records', async () => {
      await longLog(3);
      for (const after of [0, 1, INDEX_EVERY - 1, INDEX_EVERY, INDEX_EVERY + 1, 3 * INDEX_EVERY + 5, N - 1, N]) {
        const cursor = store.cursorAfter(3, after);
        // The seek lands on the block holding the next record: at most INDEX_EVERY records to skip.
        const skipped = (await readAll(3, { ...cursor, id: -1 })).filter((r) => r.id <= after).length;
        expect(skipped, String(after)).toBeLessThanOrEqual(INDEX_EVERY);
        const records = await readAll(3, cursor);
        expect(records.map((r) => r.id)).toEqual(Array.from({ length: N - after }, (_, i) => after + i + 1));
        expect(records[0]?.line ?? null).toBe(after < N ? `line ${after + 1}` : null);
      }
    });

    it('counts a closed log, and a log written before there was an index, without losing a record', async () => {
      await longLog(4);
      store.close(4);
      expect(await new LogStore(dir, Date.now).count(4)).toBe(N);
      rmSync(store.indexFile(4));
      const rebuilt = new LogStore(dir, Date.now);
      expect(await rebuilt.count(4)).toBe(N);
      expect(statSync(store.indexFile(4)).size).toBe(Math.ceil(N / INDEX_EVERY) * 8);
      expect((await readAll(4, rebuilt.cursorAfter(4, N - 2))).map((r) => r.line)).toEqual([`line ${N - 1}`, `line ${N}`]);
    });

    it('drops a last line a crash cut short, and numbers on from the last whole record', async () => {
      await longLog(5);
      store.close(5);
      appendFileSync(store.file(5), '{"id":99999,"ts":"2026');
      const again = new LogStore(dir, Date.now);
      await again.open(5);
      again.append(5, 'stderr', ['after the crash']);
      again.close(5);
      const last = readFileSync(store.file(5), 'utf8').trimEnd().split('\n').at(-1)!;
      expect(JSON.parse(last)).toMatchObject({ id: N + 1, line: 'after the crash' });
      expect(await new LogStore(dir, Date.now).count(5)).toBe(N + 1);
    });
  });

  it('keeps the marks of lines beside them, never sends them, and finds the last one across blocks', async () => {
    await store.open(1);
    expect(await store.lastMark(1)).toBeUndefined();
    store.append(1, 'stdout', ['a', 'b'], [[2, 0], [4, 0]]);
    store.append(1, 'stderr', ['khd: a line of the server, without a mark']);
    expect(await store.lastMark(1)).toEqual([4, 0]);
    // A line cut into records carries its mark on the last of them.
    store.append(1, 'stdout', ['x'.repeat(MAX_LOG_LINE_CHARS + 5)], [[MAX_LOG_LINE_CHARS + 10, 0]]);
    expect(await store.lastMark(1)).toEqual([MAX_LOG_LINE_CHARS + 10, 0]);
    // More than a block of unmarked records after it: the reading goes back a block.
    store.append(1, 'stderr', Array.from({ length: INDEX_EVERY + 10 }, (_, i) => `unmarked ${i}`));
    expect(await store.lastMark(1)).toEqual([MAX_LOG_LINE_CHARS + 10, 0]);
    const records = await readAll(1, { offset: 0, id: 0 });
    expect(records.every((r) => !('at' in r))).toBe(true);
    expect(records.slice(0, 5).map((r) => r.line.length)).toEqual([1, 1, 41, MAX_LOG_LINE_CHARS, 5]);
    // After a restart, from disk.
    store.close(1);
    expect(await new LogStore(dir, Date.now).lastMark(1)).toEqual([MAX_LOG_LINE_CHARS + 10, 0]);
  });
});
