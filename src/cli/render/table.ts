import { createRequire } from 'node:module';
import type CliTable from 'cli-table3';

/** Plain ASCII cells (colour codes aside): their width is their length. (cli-table3 colours each line of a coloured cell of several: left to it.) */
const PLAIN = /^[\x20-\x7e\n]*$/;
/** chalk's colour codes (SGR sequences), which take no room. */
const SGR = /\x1b\[[0-9;]*m/g;
const GAP = 2;

/**
 * A borderless table like NSML's, sized to its content: each column as wide as its widest cell,
 * two spaces apart, lines trimmed at the end. A table of plain ASCII cells (with or without
 * colour) is laid out here; any other (Korean memos, emoji, wide characters) by cli-table3,
 * whose width rules (string-width) cost ~25 ms of `khd ps`'s start to load and run. The two give
 * the same text for plain tables (table.test.ts).
 */
export function renderTable(head: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const plain = (c: string) => PLAIN.test(c.replace(SGR, '')) && !(c.includes('\n') && c.includes('\x1b'));
  if (head.every(plain) && cells.every((r) => r.every(plain))) return plainTable(head, cells);
  return cliTable3(head, cells);
}

/** The layout cli-table3 makes of plain cells: a cell's lines stacked, each padded to its column's width and the gap. */
function plainTable(head: string[], rows: string[][]): string {
  const all = [head, ...rows].map((r) => r.map((c) => c.split('\n')));
  const widths: number[] = [];
  for (const row of all) row.forEach((lines, i) => (widths[i] = Math.max(widths[i] ?? 0, ...lines.map((l) => l.replace(SGR, '').length))));
  const out: string[] = [];
  for (const row of all) {
    const height = Math.max(1, ...row.map((lines) => lines.length));
    for (let k = 0; k < height; k++) {
      const line = widths.map((w, i) => {
        const text = row[i]?.[k] ?? '';
        return text + ' '.repeat(w - text.replace(SGR, '').length + GAP);
      });
      out.push(line.join('').trimEnd());
    }
  }
  return `${out.join('\n')}\n`;
}

/** cli-table3, loaded only for a table that needs its width rules. */
export function cliTable3(head: string[], rows: string[][]): string {
  const Table = createRequire(import.meta.url)('cli-table3') as typeof CliTable;
  const table = new Table({
    head,
    style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': GAP },
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '',
      'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '',
    },
  });
  table.push(...rows);
  return `${table.toString().split('\n').map((l) => l.trimEnd()).join('\n')}\n`;
}
