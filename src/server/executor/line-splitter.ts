import { StringDecoder } from 'node:string_decoder';

/**
 * Turns a byte stream into whole lines. `\n`, `\r\n` and a lone `\r` (progress bars) each end a
 * line; a multi-byte character split across chunks is kept whole; the rest is flushed at the end.
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
    this.pending = parts.pop() ?? '';
    return parts;
  }
}
