import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogRecord } from '../../protocol/types.js';
import { LogStore, MAX_LOG_LINE_CHARS, type LogCursor } from './log-store.js';

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
});
