import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionEvents } from './session-events.js';

const event = (e: object) => `${JSON.stringify(e)}\n`;

describe('SessionEvents', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'khd-events-'));
    file = join(dir, 'events.jsonl');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads only what is new, and waits for a line to be complete', () => {
    const events = new SessionEvents();
    writeFileSync(file, event({ event: 'report', summary: true, metrics: { loss: 1 } }) + '{"event": "pau');
    expect(events.read(file)).toMatchObject({ lastSummary: { loss: 1 }, pausedAt: null });
    appendFileSync(file, 'sed", "ts": 10}\n');
    expect(events.read(file).pausedAt).toBe(10_000);
  });

  it('skips garbage and lines longer than any event (also one longer than a read), and goes on after them', () => {
    const events = new SessionEvents();
    writeFileSync(file, 'not json\n' + 'x'.repeat(3 * 1024 * 1024) + '\n' + '{"event": "save"' + ' '.repeat(200_000) + ', "checkpoint": "big"}\n');
    appendFileSync(file, event({ event: 'report', summary: true, metrics: { acc: 0.9, name: 'no' } }) + event({ event: 'save', checkpoint: 'best', ts: 1 }));
    const state = events.read(file);
    expect(state.lastSummary).toEqual({ acc: 0.9 });
    expect([...state.saves.keys()]).toEqual(['best']);
  });
});
