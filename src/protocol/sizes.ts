import bytes from 'bytes';
import ms from 'ms';

/** Parses `24G`, `300MB`, `512m`, `1.5 GiB` or a plain byte count; returns undefined when not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$/i.exec(text);
  if (!m) return undefined;
  const value = bytes.parse(`${m[1]}${m[2] ? `${m[2]}b` : 'b'}`);
  return value === null ? undefined : value;
}

export function formatSize(n: number): string {
  return bytes.format(n, { unitSeparator: ' ', decimalPlaces: n < 1024 ? 0 : 1 }) ?? `${n} B`;
}

/** Parses `1h`, `30m`, `10s`, `1d`; returns milliseconds, or undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const value = ms(text as ms.StringValue);
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

/** `3 days`, `2 hours`, `90 ms`. */
export function formatDuration(milliseconds: number): string {
  return ms(milliseconds, { long: true });
}
