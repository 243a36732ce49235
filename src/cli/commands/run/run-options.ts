import { parse as parseShell } from 'shell-quote';
import { parseSize } from '../../../protocol/sizes.js';
import { UsageError } from '../../errors.js';
import type { RunOptions } from './run.js';

export interface ParsedRun {
  args: string[];
  memory: number;
  shmSize: number;
}

/** Checks the flags a participant typed, before anything is read or sent. */
export function parseRunOptions(opts: RunOptions): ParsedRun {
  const memory = parseSize(opts.memory);
  if (!memory) throw new UsageError(`--memory '${opts.memory}' is not a size: use e.g. 24G or 512M`);
  const shmSize = parseSize(opts.shmSize);
  if (shmSize === undefined) throw new UsageError(`--shm-size '${opts.shmSize}' is not a size: use e.g. 1G`);
  const args = parseArgsOption(opts.args ?? '');
  if (opts.entry.trim() === '') throw new UsageError('-e needs the Python file to run, e.g. -e main.py');
  if (opts.entry.startsWith('/') || opts.entry.split('/').includes('..')) {
    throw new UsageError(`-e '${opts.entry}' must be a path inside the project`);
  }
  return { args, memory, shmSize };
}

/** `-a '--epochs 10 --lr 0.1'` as the code's arguments, split as a shell would; shell syntax refused. */
export function parseArgsOption(text: string): string[] {
  const args: string[] = [];
  for (const token of parseShell(text)) {
    if (typeof token !== 'string') throw new UsageError(`-a '${text}' has shell syntax (pipes, redirects, globs): pass plain arguments`);
    args.push(token);
  }
  return args;
}
