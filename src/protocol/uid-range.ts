/** A range of uids, as `khd server --session-uids FIRST-LAST` takes it. */
export interface UidRange {
  first: number;
  count: number;
}

/** `70000-70999` → { first: 70000, count: 1000 }. */
export function parseUidRange(text: string): UidRange {
  const m = /^(\d+)-(\d+)$/.exec(text.trim());
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (!m || !(first >= 1000) || !(last >= first) || last >= 2 ** 32 - 2) {
    throw new Error(`'${text}' is not a range of uids: give FIRST-LAST, both 1000 or more, e.g. 70000-70999`);
  }
  return { first, count: last - first + 1 };
}

export function formatUidRange(range: UidRange): string {
  return `${range.first}-${range.first + range.count - 1}`;
}
