import type { Readable, Writable } from 'node:stream';
import { isatty } from 'node:tty';

/** The process's streams, and what each can do: the one place that knows about TTYs and colour. */
export interface IOStreams {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  stdinIsTTY: boolean;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  /** Colour on stdout / stderr: a TTY without NO_COLOR, or FORCE_COLOR. */
  colorOut: boolean;
  colorErr: boolean;
  out(text: string): void;
  err(text: string): void;
}

function colorFor(isTTY: boolean, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return isTTY && env.TERM !== 'dumb';
}

export function systemIO(env: NodeJS.ProcessEnv = process.env): IOStreams {
  // isatty() on the descriptors: touching process.stdin would open it, which costs start-up time.
  const stdoutIsTTY = isatty(1);
  const stderrIsTTY = isatty(2);
  return {
    get stdin() {
      return process.stdin;
    },
    get stdout() {
      return process.stdout;
    },
    get stderr() {
      return process.stderr;
    },
    stdinIsTTY: isatty(0),
    stdoutIsTTY,
    stderrIsTTY,
    colorOut: colorFor(stdoutIsTTY, env),
    colorErr: colorFor(stderrIsTTY, env),
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
}

