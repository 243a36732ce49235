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
  /** Resolves once stdout and stderr have room again: long output waits for a slow reader. */
  drained(): Promise<void>;
}

function colorFor(isTTY: boolean, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return isTTY && env.TERM !== 'dumb';
}

/**
 * A reader that went away (`khd logs X | head -2`) ends the output quietly with exit 0, as
 * `git log | head` ends without a word; any other write error is one.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): NodeJS.WriteStream {
  if (stream.listenerCount('error') === 0) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(0);
    });
  }
  return stream;
}

const roomIn = (stream: NodeJS.WriteStream) =>
  stream.writableNeedDrain ? new Promise<void>((resolve) => stream.once('drain', () => resolve())) : undefined;

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
    out: (text) => void quietOnClosedPipe(process.stdout).write(text),
    err: (text) => void quietOnClosedPipe(process.stderr).write(text),
    drained: async () => {
      await Promise.all([roomIn(process.stdout), roomIn(process.stderr)]);
    },
  };
}

