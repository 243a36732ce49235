import { closeSync, constants, openSync, readSync } from 'node:fs';
import type { LogStream } from '../../protocol/types.js';
import type { LineSink } from './executor.js';
import { MAX_LINE_CHARS } from './line-splitter.js';

/** Where a job's output has been read up to, in bytes: [stdout, stderr], after whole lines only. */
export type OutputMark = [number, number];

const READ_BYTES = 1024 * 1024;
const CR = 13;
const LF = 10;

function isMark(m: unknown): m is OutputMark {
  return Array.isArray(m) && m.length === 2 && m.every((n) => Number.isSafeInteger(n) && n >= 0);
}

/**
 * A batch job's stdout and stderr, files a node writes into the shared folder, read as they grow
 * and cut into lines as LineSplitter cuts a pipe (`\n`, `\r\n`, a lone `\r`; at most
 * MAX_LINE_CHARS bytes, at a character's edge). Each line goes out with the mark of where both
 * files stand after it: kept with the line in the log, the last one is where the reading resumes
 * after a restart, so no line is lost or logged twice.
 */
export class JobOutput {
  private readonly at: Record<LogStream, number>;
  private readonly pending: Record<LogStream, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };

  constructor(
    private readonly files: Record<LogStream, string>,
    private readonly onLines: LineSink,
    /** A mark from the log (LogStore.lastMark); anything else starts at the beginning. */
    from?: unknown,
  ) {
    const [out, err] = isMark(from) ? from : [0, 0];
    this.at = { stdout: out, stderr: err };
  }

  /** What both files gained since the last read, as whole lines. */
  read(): void {
    this.readStream('stdout', false);
    this.readStream('stderr', false);
  }

  /** The rest, once the job has ended: a last line without its line end too. */
  end(): void {
    this.readStream('stdout', true);
    this.readStream('stderr', true);
  }

  private mark(stream: LogStream, at: number): OutputMark {
    return stream === 'stdout' ? [at, this.at.stderr] : [this.at.stdout, at];
  }

  private readStream(stream: LogStream, final: boolean): void {
    let fd: number;
    try {
      // Root's file in the server's folder; never a link put in its place.
      fd = openSync(this.files[stream], constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return;
    }
    try {
      const buffer = Buffer.alloc(READ_BYTES);
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, this.at[stream] + this.pending[stream].length);
        if (n === 0) break;
        this.pending[stream] = Buffer.concat([this.pending[stream], buffer.subarray(0, n)]);
        this.cut(stream, false);
      }
      if (final) this.cut(stream, true);
    } finally {
      closeSync(fd);
    }
  }

  /** Emits the whole lines of what is pending (all of it when `final`), each with its mark. */
  private cut(stream: LogStream, final: boolean): void {
    const data = this.pending[stream];
    const lines: string[] = [];
    const marks: OutputMark[] = [];
    let start = 0;
    const emit = (end: number, next: number) => {
      lines.push(data.subarray(start, end).toString('utf8'));
      start = next;
      marks.push(this.mark(stream, this.at[stream] + next));
    };
    for (let i = 0; i < data.length; i++) {
      if (i - start >= MAX_LINE_CHARS) {
        // Output that never ends a line: cut where a character starts (not inside UTF-8's 10xxxxxx).
        let cut = i;
        while (cut > start + 1 && (data[cut]! & 0xc0) === 0x80) cut--;
        emit(cut, cut);
      }
      const byte = data[i];
      if (byte === LF) emit(i, i + 1);
      else if (byte === CR) {
        // A last `\r` may be the first half of `\r\n`: kept until the next read says.
        if (i + 1 === data.length && !final) break;
        emit(i, data[i + 1] === LF ? ++i + 1 : i + 1);
      }
    }
    if (final && start < data.length) emit(data.length, data.length);
    this.pending[stream] = Buffer.from(data.subarray(start));
    this.at[stream] += start;
    if (lines.length > 0) this.onLines(stream, lines, marks);
  }
}
