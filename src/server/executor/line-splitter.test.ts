import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_LINE_CHARS } from './line-splitter.js';

describe('LineSplitter', () => {
  it('splits on \\n, \\r\\n and a lone \\r, across chunk borders', () => {
    const s = new LineSplitter();
    const out = [
      ...s.push(Buffer.from('a\nb\r')),
      ...s.push(Buffer.from('\nc\rd')),
      ...s.push(Buffer.from('e\n')),
      ...s.end(),
    ];
    expect(out).toEqual(['a', 'b', 'c', 'de']);
  });

  it('keeps a multi-byte character split between chunks whole', () => {
    const s = new LineSplitter();
    const bytes = Buffer.from('한글\n');
    expect([...s.push(bytes.subarray(0, 2)), ...s.push(bytes.subarray(2)), ...s.end()]).toEqual(['한글']);
  });

  it('flushes an unterminated last line at the end', () => {
    const s = new LineSplitter();
    expect([...s.push(Buffer.from('no newline')), ...s.end()]).toEqual(['no newline']);
    expect(s.end()).toEqual([]);
  });

  it('cuts output that never ends a line into lines of at most MAX_LINE_CHARS', () => {
    const s = new LineSplitter();
    const lines: string[] = [];
    for (let i = 0; i < 10; i++) lines.push(...s.push(Buffer.from('x'.repeat(MAX_LINE_CHARS / 2 + 1))));
    lines.push(...s.end());
    expect(lines.join('')).toBe('x'.repeat(10 * (MAX_LINE_CHARS / 2 + 1)));
    expect(lines.slice(0, -1).every((l) => l.length === MAX_LINE_CHARS)).toBe(true);
    expect(lines).toHaveLength(6);
  });
});
