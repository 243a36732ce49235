import { Chalk, type ChalkInstance } from 'chalk';
import type { SessionInfo } from '../../protocol/types.js';
import type { IOStreams } from '../iostreams.js';

/**
 * Colour with a meaning, on a stream that shows it: a terminal without NO_COLOR, or FORCE_COLOR
 * (iostreams.ts decides). Elsewhere every function here returns its text as it is.
 */
export function paintOf(on: boolean): ChalkInstance {
  return new Chalk({ level: on ? 1 : 0 });
}

/** `error:` in red on stderr. */
export function errorPrefix(io: Pick<IOStreams, 'colorErr'>): string {
  return paintOf(io.colorErr).red('error:');
}

/** A session's status as colour says it: running green, waiting yellow, failed red, stopped dim. */
export function paintStatus(paint: ChalkInstance, s: Pick<SessionInfo, 'status' | 'exitCode'>, text: string): string {
  switch (s.status) {
    case 'Running':
      return paint.green(text);
    case 'Queued':
      return paint.yellow(text);
    case 'Failed':
      return paint.red(text);
    case 'Stopped':
      return paint.dim(text);
    default:
      return s.exitCode === 0 ? text : paint.red(text);
  }
}
