import { InvalidArgumentError } from 'commander';
import { parseDuration, parseSize } from '../protocol/sizes.js';

/** A flag's value as a whole number of at least `min`; commander reports a bad one as a usage error. */
export function parseWhole(min: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}`);
    return Number(text);
  };
}

/** A flag's value as one of `values`. */
export function choice<T extends string>(name: string, values: readonly T[]) {
  return (text: string): T => {
    if (!(values as readonly string[]).includes(text)) throw new InvalidArgumentError(`${name} must be one of ${values.join(', ')}`);
    return text as T;
  };
}

/** A flag's value as a size (`64M`, `1G`), in bytes. */
export function sizeOption(text: string): number {
  const value = parseSize(text);
  if (!value) throw new InvalidArgumentError('expected a size such as 64M or 1G');
  return value;
}

/** A flag's value as a duration (`3d`, `12h`, `90m`), in milliseconds. */
export function durationOption(text: string): number {
  const value = parseDuration(text);
  if (!value) throw new InvalidArgumentError('expected a duration such as 12h or 3d');
  return value;
}

/** A repeatable option's parser: each use adds its value (`--label a --label b`). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * The examples a command's --help ends with, each `COMMAND  # what it does`, aligned:
 * `cmd.addHelpText('after', examples(['khd ps -a', 'every session'], …))`.
 */
export function examples(...lines: [command: string, what?: string][]): string {
  const width = Math.max(...lines.map(([c]) => c.length));
  const body = lines.map(([c, what]) => `  ${what ? `${c.padEnd(width)}  # ${what}` : c}`).join('\n');
  return `\nExample${lines.length === 1 ? '' : 's'}:\n${body}`;
}
