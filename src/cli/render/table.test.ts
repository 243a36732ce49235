import { describe, expect, it } from 'vitest';
import { cliTable3, renderTable } from './table.js';

const red = (s: string) => `\x1b[31m${s}\x1b[39m`;

describe('renderTable', () => {
  it('lays out plain tables as cli-table3 does: widths, gaps, colours, cells of several lines, empty cells, trailing spaces trimmed', () => {
    const tables: [string[], (string | number)[][]][] = [
      [['Name', 'Status'], []],
      [['Name', 'Created', 'Status'], [['kim/mnist/1', '5 minutes ago', 'Running'], ['kim/mnist/12', 'now', red('Failed (1)')]]],
      [['A', 'B', 'C'], [['', 'x', ''], ['long cell here', '', 'z'], [1, 22, 333]]],
      [['Memo', 'Size'], [['two\nlines', '1 MB'], ['one', 'a\nb\nc'], [red('x\ny'), '']]],
      [['Wide header over narrow cells', 'B'], [['a', 'b']]],
    ];
    for (const [head, rows] of tables) {
      expect(renderTable(head, rows), JSON.stringify([head, rows])).toBe(cliTable3(head, rows.map((r) => r.map(String))));
    }
  });

  it('measures Korean and wide characters as cli-table3 does', () => {
    const out = renderTable(['User', 'Memo'], [['kim', '한글 메모'], ['lee', 'plain']]);
    expect(out).toBe('User  Memo\nkim   한글 메모\nlee   plain\n');
  });
});
