import { PassThrough, type Readable, type Writable } from 'node:stream';

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

export interface TestIO extends IOStreams {
  stdoutText(): string;
  stderrText(): string;
}

/** In-memory streams for tests; stdin holds `input` when given. */
export function testIO(options: { input?: string; tty?: boolean } = {}): TestIO {
  const chunks = { out: [] as string[], err: [] as string[] };
  const sink = (into: string[]) => {
    const s = new PassThrough();
    s.on('data', (c: Buffer) => into.push(c.toString()));
    return s;
  };
  const stdin = new PassThrough();
  stdin.end(options.input ?? '');
  const tty = options.tty ?? false;
  return {
    stdin,
    stdout: sink(chunks.out),
    stderr: sink(chunks.err),
    stdinIsTTY: tty,
    stdoutIsTTY: tty,
    stderrIsTTY: tty,
    colorOut: false,
    colorErr: false,
    out: (text) => void chunks.out.push(text),
    err: (text) => void chunks.err.push(text),
    stdoutText: () => chunks.out.join(''),
    stderrText: () => chunks.err.join(''),
  };
}
