import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readReports, SessionEvents } from './session-events.js';

const event = (e: object) => `${JSON.stringify(e)}\n`;

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'khd-events-'));
  file = join(dir, 'events.jsonl');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('SessionEvents', () => {

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

describe('readReports', () => {

  it('returns the reports with numbers, each once across pages, and waits for a line to be complete', () => {
    writeFileSync(
      file,
      event({ event: 'report', step: 1, ts: 1.5, metrics: { train__loss: 0.5, note: 'text' } }) +
        event({ event: 'save', checkpoint: 'best' }) +
        'garbage\n' +
        event({ event: 'report', metrics: { acc: 0.9 } }) +
        event({ event: 'report', step: 3, metrics: {} }) +
        '{"event": "report", "step": 4, "metr',
    );
    const first = readReports(file, 0);
    expect(first.points).toEqual([
      { step: 1, ts: 1500, metrics: { train__loss: 0.5 } },
      { step: null, ts: null, metrics: { acc: 0.9 } },
    ]);
    expect(first.more).toBe(false);
    expect(readReports(file, first.offset).points).toEqual([]);
    appendFileSync(file, 'ics": {"loss": 0.25}}\n');
    expect(readReports(file, first.offset).points).toEqual([{ step: 4, ts: null, metrics: { loss: 0.25 } }]);
    expect(readReports(join(dir, 'missing'), 0)).toEqual({ offset: 0, points: [], more: false });
  });

  it('cuts a long file into pages of about 1 MiB, saying there is more', () => {
    const line = event({ event: 'report', step: 0, metrics: { loss: 1, pad: 0 } });
    const count = Math.ceil((3 * 1024 * 1024) / line.length);
    writeFileSync(file, Array.from({ length: count }, (_, i) => line.replace('"step":0', `"step":${i}`)).join(''));
    const steps: number[] = [];
    let offset = 0;
    let pages = 0;
    for (;;) {
      const page = readReports(file, offset);
      pages += 1;
      steps.push(...page.points.map((p) => p.step!));
      offset = page.offset;
      if (!page.more) break;
    }
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(steps).toEqual(Array.from({ length: count }, (_, i) => i));
  });
});
