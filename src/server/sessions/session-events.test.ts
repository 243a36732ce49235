import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
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

  it('reads only what is new, and waits for a line to be complete', async () => {
    const events = new SessionEvents();
    writeFileSync(file, event({ event: 'report', summary: true, metrics: { loss: 1 } }) + '{"event": "pau');
    expect(await events.read(file)).toMatchObject({ lastSummary: { loss: 1 }, pausedAt: null });
    appendFileSync(file, 'sed", "ts": 10}\n');
    expect((await events.read(file)).pausedAt).toBe(10_000);
  });

  it('skips garbage and lines longer than any event (also one longer than a read), and goes on after them', async () => {
    const events = new SessionEvents();
    writeFileSync(file, 'not json\n' + 'x'.repeat(3 * 1024 * 1024) + '\n' + '{"event": "save"' + ' '.repeat(200_000) + ', "checkpoint": "big"}\n');
    appendFileSync(file, event({ event: 'report', summary: true, metrics: { acc: 0.9, name: 'no' } }) + event({ event: 'save', checkpoint: 'best', ts: 1 }));
    const state = await events.read(file);
    expect(state.lastSummary).toEqual({ acc: 0.9 });
    expect([...state.saves.keys()]).toEqual(['best']);
  });
});

describe('SessionEvents, against what a hostile session leaves in place of its events file', () => {
  it("reads nothing through a link to another session's events file, and says why", async () => {
    const other = join(dir, 'other.jsonl');
    writeFileSync(other, event({ event: 'report', summary: true, metrics: { acc: 0.99 } }));
    symlinkSync(other, file);
    const events = new SessionEvents();
    expect(await events.read(file)).toMatchObject({
      lastSummary: null,
      problem: "events file refused: 'events.jsonl' is a symbolic link: the server follows none",
    });
    expect(await readReports(file, 0)).toEqual({ offset: 0, points: [], more: false });
  });

  it('does not block on a FIFO', async () => {
    execFileSync('mkfifo', [file]);
    expect((await new SessionEvents().read(file)).problem).toBe("events file refused: 'events.jsonl' is not a regular file");
  });

  it('reads a sparse 20 GiB file only up to its cap, at once, and says it is over its limit', async () => {
    writeFileSync(file, event({ event: 'report', summary: true, metrics: { loss: 1 } }));
    truncateSync(file, 20 * 1024 ** 3);
    const events = new SessionEvents(4 * 1024 * 1024);
    const state = await events.read(file);
    expect(state).toMatchObject({ lastSummary: { loss: 1 }, problem: 'events file over its limit (4 MB)' });
    expect((await readReports(file, 0, 4 * 1024 * 1024)).points).toHaveLength(1);
  });

  it('reads a file put in place of the first one from its start', async () => {
    const events = new SessionEvents();
    writeFileSync(file, event({ event: 'report', summary: true, metrics: { loss: 1 } }) + event({ event: 'save', checkpoint: 'a' }));
    expect([...(await events.read(file)).saves.keys()]).toEqual(['a']);
    const replacement = join(dir, 'new');
    writeFileSync(replacement, event({ event: 'report', summary: true, metrics: { loss: 2 } }));
    renameSync(replacement, file);
    const state = await events.read(file);
    expect(state.lastSummary).toEqual({ loss: 2 });
    expect([...state.saves.keys()]).toEqual([]);
  });

  it('applies each line once when reads overlap', async () => {
    const events = new SessionEvents();
    writeFileSync(file, event({ event: 'save', checkpoint: 'a', ts: 1 }));
    const [a, b] = await Promise.all([events.read(file), events.read(file)]);
    expect(a).toBe(b);
    expect([...a.saves.keys()]).toEqual(['a']);
  });
});

describe('readReports', () => {

  it('returns the reports with numbers, each once across pages, and waits for a line to be complete', async () => {
    writeFileSync(
      file,
      event({ event: 'report', step: 1, ts: 1.5, metrics: { train__loss: 0.5, note: 'text' } }) +
        event({ event: 'save', checkpoint: 'best' }) +
        'garbage\n' +
        event({ event: 'report', metrics: { acc: 0.9 } }) +
        event({ event: 'report', step: 3, metrics: {} }) +
        '{"event": "report", "step": 4, "metr',
    );
    const first = await readReports(file, 0);
    expect(first.points).toEqual([
      { step: 1, ts: 1500, metrics: { train__loss: 0.5 } },
      { step: null, ts: null, metrics: { acc: 0.9 } },
    ]);
    expect(first.more).toBe(false);
    expect((await readReports(file, first.offset)).points).toEqual([]);
    appendFileSync(file, 'ics": {"loss": 0.25}}\n');
    expect((await readReports(file, first.offset)).points).toEqual([{ step: 4, ts: null, metrics: { loss: 0.25 } }]);
    expect(await readReports(join(dir, 'missing'), 0)).toEqual({ offset: 0, points: [], more: false });
  });

  it('cuts a long file into pages of about 1 MiB, saying there is more', async () => {
    const line = event({ event: 'report', step: 0, metrics: { loss: 1, pad: 0 } });
    const count = Math.ceil((3 * 1024 * 1024) / line.length);
    writeFileSync(file, Array.from({ length: count }, (_, i) => line.replace('"step":0', `"step":${i}`)).join(''));
    const steps: number[] = [];
    let offset = 0;
    let pages = 0;
    for (;;) {
      const page = await readReports(file, offset);
      pages += 1;
      steps.push(...page.points.map((p) => p.step!));
      offset = page.offset;
      if (!page.more) break;
    }
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(steps).toEqual(Array.from({ length: count }, (_, i) => i));
  });
});
