import { appendFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogStream } from '../../protocol/types.js';
import { JobOutput } from './job-output.js';
import { MAX_LINE_CHARS } from './line-splitter.js';

let dir: string;
let files: Record<LogStream, string>;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'khd-job-output-'));
  files = { stdout: join(dir, '1.out'), stderr: join(dir, '1.err') };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function reader(from?: unknown) {
  const lines: [LogStream, string, unknown][] = [];
  const output = new JobOutput(files, (stream, batch, marks) => batch.forEach((l, i) => lines.push([stream, l, marks?.[i]])), from);
  return { output, lines };
}

describe('JobOutput', () => {
  it('reads whole lines as the files grow, each with where both files stand after it', () => {
    const { output, lines } = reader();
    output.read();
    expect(lines).toEqual([]);
    writeFileSync(files.stdout, 'one\ntw');
    writeFileSync(files.stderr, 'warn\r\n');
    output.read();
    expect(lines).toEqual([['stdout', 'one', [4, 0]], ['stderr', 'warn', [4, 6]]]);
    appendFileSync(files.stdout, 'o\rbar 50%\r');
    output.read();
    // A last `\r` waits: it may be the first half of `\r\n`.
    expect(lines.slice(2)).toEqual([['stdout', 'two', [8, 6]]]);
    appendFileSync(files.stdout, '\nno end');
    output.read();
    expect(lines.slice(3)).toEqual([['stdout', 'bar 50%', [17, 6]]]);
    output.end();
    expect(lines.slice(4)).toEqual([['stdout', 'no end', [23, 6]]]);
  });

  it('resumes from a mark: every line after it once, none before', () => {
    writeFileSync(files.stdout, 'a\nb\nc\n');
    writeFileSync(files.stderr, 'e1\ne2\n');
    const first = reader();
    first.output.read();
    const all = first.lines;
    for (const [n, [, , mark]] of all.entries()) {
      const again = reader(mark);
      again.output.end();
      expect(again.lines.map(([s, l]) => [s, l])).toEqual(all.slice(n + 1).filter(([s]) => s === 'stdout').concat(all.slice(n + 1).filter(([s]) => s === 'stderr')).map(([s, l]) => [s, l]));
    }
  });

  it('cuts output that never ends a line at MAX_LINE_CHARS bytes, where a character starts', () => {
    // 'é' is two bytes: a cut at an odd byte count would fall inside one.
    writeFileSync(files.stdout, `x${'é'.repeat(MAX_LINE_CHARS)}\n`);
    const { output, lines } = reader();
    output.end();
    expect(lines.map(([, l]) => l).join('')).toBe(`x${'é'.repeat(MAX_LINE_CHARS)}`);
    expect(lines.every(([, l]) => !l.includes('\uFFFD') && Buffer.byteLength(l) <= MAX_LINE_CHARS)).toBe(true);
    expect(lines.at(-1)![2]).toEqual([1 + 2 * MAX_LINE_CHARS + 1, 0]);
  });

  it('ignores a mark that is not one, and never follows a link put where a file is expected', () => {
    writeFileSync(join(dir, 'secret'), 'root only\n');
    symlinkSync(join(dir, 'secret'), files.stdout);
    const { output, lines } = reader('nonsense');
    output.end();
    expect(lines).toEqual([]);
  });
});
