import { StringDecoder } from 'node:string_decoder';

/** Longer output without a line end is cut into lines of this many characters. */
export const MAX_LINE_CHARS = 64 * 1024;

/**
 * Turns a byte stream into whole lines. `\n`, `\r\n` and a lone `\r` (progress bars) each end a
 * line; a multi-byte character split across chunks is kept whole; the rest is flushed at the end.
 * A line is at most MAX_LINE_CHARS long: output that never ends a line is not held without
 * bound, and reaches the log (and its cap) like any other.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  push(chunk: Buffer): string[] {
    return this.split(this.pending + this.decoder.write(chunk));
  }

  end(): string[] {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    return rest.length > 0 ? [rest.replace(/\r$/, '')] : [];
  }

  private split(text: string): string[] {
    // A trailing `\r` may be the first half of `\r\n`: keep it until the next chunk says.
    const parts = text.split(/\r\n|\r(?!$)|\n/);
    let rest = parts.pop() ?? '';
    while (rest.length > MAX_LINE_CHARS) {
      parts.push(rest.slice(0, MAX_LINE_CHARS));
      rest = rest.slice(MAX_LINE_CHARS);
    }
    this.pending = rest;
    return parts;
  }
}
