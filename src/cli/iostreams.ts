import type { Readable, Writable } from 'node:stream';

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
  const stdoutIsTTY = process.stdout.isTTY === true;
  const stderrIsTTY = process.stderr.isTTY === true;
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    stdinIsTTY: process.stdin.isTTY === true,
    stdoutIsTTY,
    stderrIsTTY,
    colorOut: colorFor(stdoutIsTTY, env),
    colorErr: colorFor(stderrIsTTY, env),
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
}

