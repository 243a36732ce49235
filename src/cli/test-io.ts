import { PassThrough } from 'node:stream';
import type { IOStreams } from './iostreams.js';

// Kept apart from iostreams.ts so that the CLI's start-up does not load node:stream for tests' sake.
export interface TestIO extends IOStreams {
  stdoutText(): string;
  stderrText(): string;
}

/** In-memory streams for tests; stdin holds `input` when given. */
export function testIO(options: { input?: string; tty?: boolean } = {}): TestIO {
  const chunks = { out: [] as string[], err: [] as string[] };
  const tty = options.tty ?? false;
  const sink = (into: string[]) => {
    const s = new PassThrough();
    s.on('data', (c: Buffer) => into.push(c.toString()));
    // A terminal is as wide as a common one.
    return tty ? Object.assign(s, { columns: 100 }) : s;
  };
  const stdin = new PassThrough();
  stdin.end(options.input ?? '');
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
    drained: async () => {},
    stdoutText: () => chunks.out.join(''),
    stderrText: () => chunks.err.join(''),
  };
}
