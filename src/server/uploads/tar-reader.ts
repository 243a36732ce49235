/**
 * A strict reader of the tars `khd run` sends: POSIX ustar headers, PAX extended headers for
 * long paths and sizes, and nothing else. It parses the bytes as they come and hands each
 * entry's bytes to its receiver as pieces of the chunks it was given, without a stream or an
 * event per entry (node-tar's did, ~100 ms and much of the garbage of a 5,000-file upload).
 * Anything else (a bad checksum, another format, global or GNU headers, a truncated archive)
 * is refused: no honest client sends it.
 */

const BLOCK = 512;
/** A PAX header names a path of at most 1,024 characters (and a size): a few KiB is plenty. */
const MAX_PAX_BYTES = 64 * 1024;

/** Type flags, by the names node-tar gives them (what error messages say). */
const TYPES: Record<string, string> = {
  '0': 'File',
  '\0': 'File',
  '1': 'Link',
  '2': 'SymbolicLink',
  '3': 'CharacterDevice',
  '4': 'BlockDevice',
  '5': 'Directory',
  '6': 'FIFO',
  '7': 'ContiguousFile',
  x: 'ExtendedHeader',
  g: 'GlobalExtendedHeader',
  L: 'NextFileHasLongPath',
  K: 'NextFileHasLongLinkpath',
};

export interface TarEntry {
  path: string;
  /** node-tar's name for its type: File, Directory, SymbolicLink, … */
  type: string;
  size: number;
  /** A size given by a PAX header as well (the caller decides whether it may be). */
  paxSize?: number;
}

/** Where one entry's bytes go: `data` may ask the reader to wait (back-pressure) by returning a promise. */
export interface EntryReceiver {
  data(piece: Buffer): void | Promise<void>;
  end(): void;
}

export class TarError extends Error {}

type State = 'header' | 'data' | 'pad' | 'pax' | 'end';

/**
 * Feed it the tar's bytes in order (`feed`), then call `finish`. `onEntry` gets each file or
 * folder and returns its receiver (or a promise of one, to make the reader wait); it throws to
 * refuse the entry. Errors are TarError.
 */
export class TarReader {
  private state: State = 'header';
  /** A header block that spans two chunks, gathered here. */
  private readonly held = Buffer.alloc(BLOCK);
  private heldBytes = 0;
  private left = 0;
  private pad = 0;
  private receiver: EntryReceiver | undefined;
  private pax: Buffer[] = [];
  private paxFields: Map<string, string> | undefined;
  private zeroBlocks = 0;
  private blocks = 0;

  constructor(private readonly onEntry: (entry: TarEntry) => EntryReceiver | Promise<EntryReceiver>) {}

  /** Reads `chunk`; resolves (or returns at once) when the reader may be given the next one. */
  feed(chunk: Buffer): Promise<void> | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'end') return undefined;
      if (this.state === 'header') {
        let block: Buffer;
        if (this.heldBytes === 0 && chunk.length - at >= BLOCK) {
          block = chunk.subarray(at, at + BLOCK);
          at += BLOCK;
        } else {
          const n = Math.min(BLOCK - this.heldBytes, chunk.length - at);
          chunk.copy(this.held, this.heldBytes, at, at + n);
          this.heldBytes += n;
          at += n;
          if (this.heldBytes < BLOCK) return undefined;
          this.heldBytes = 0;
          block = this.held;
        }
        const next = this.header(block);
        if (next) return next.then(() => this.feed(chunk.subarray(at)));
        continue;
      }
      const n = Math.min(this.left, chunk.length - at);
      const piece = chunk.subarray(at, at + n);
      at += n;
      this.left -= n;
      if (this.state === 'pax') this.pax.push(Buffer.from(piece));
      // A receiver that asks to wait gets its entry's end only after the wait.
      const wait = this.state === 'data' && n > 0 ? this.receiver!.data(piece) : undefined;
      if (wait) {
        return wait.then(() => {
          if (this.left === 0) this.entryDone();
          return this.feed(chunk.subarray(at));
        });
      }
      if (this.left === 0) this.entryDone();
    }
    return undefined;
  }

  /** The body has ended: it must have ended where the archive does. */
  finish(): void {
    if (this.state === 'end') return;
    if (this.blocks === 0 && this.heldBytes === 0) throw new TarError('the body holds no tar');
    if (this.blocks === 0 && isGzip(this.held)) throw new TarError('the tar is gzipped twice');
    throw new TarError('the tar ends before its end blocks (the upload was cut off)');
  }

  /** After a piece of data, padding or a PAX header's bytes. */
  private entryDone(): void {
    if (this.state === 'data') {
      this.receiver!.end();
      this.receiver = undefined;
    } else if (this.state === 'pax') {
      this.paxFields = parsePax(Buffer.concat(this.pax));
      this.pax = [];
    }
    if (this.state !== 'pad' && this.pad > 0) {
      this.state = 'pad';
      this.left = this.pad;
      this.pad = 0;
    } else this.state = 'header';
  }

  private header(block: Buffer): Promise<void> | undefined {
    this.blocks += 1;
    if (isZero(block)) {
      if (this.paxFields) throw new TarError('a PAX header is followed by the end of the archive');
      if (++this.zeroBlocks === 2) this.state = 'end';
      return undefined;
    }
    if (this.zeroBlocks > 0) throw new TarError('data after an end block');
    if (this.blocks === 1 && isGzip(block)) throw new TarError('the tar is gzipped twice');
    const h = parseHeader(block);
    const size = h.size;
    if (h.type === 'ExtendedHeader') {
      if (size < 0) throw new TarError('a PAX header of a base-256 size');
      if (this.paxFields) throw new TarError('two PAX headers in a row');
      if (size > MAX_PAX_BYTES) throw new TarError(`a PAX header of ${size} bytes (at most ${MAX_PAX_BYTES})`);
      this.startBytes('pax', size);
      return undefined;
    }
    if (h.type === 'GlobalExtendedHeader' || h.type === 'NextFileHasLongPath' || h.type === 'NextFileHasLongLinkpath') {
      throw new TarError(`a ${h.type} header: only ustar and PAX headers are accepted`);
    }
    const fields = this.paxFields;
    this.paxFields = undefined;
    const entry: TarEntry = { path: fields?.get('path') ?? h.path, type: h.type, size };
    const paxSize = fields?.get('size');
    if (paxSize !== undefined) {
      if (!/^\d+$/.test(paxSize)) throw new TarError(`entry '${entry.path}' has a PAX size that is not a number`);
      entry.paxSize = Number(paxSize);
      entry.size = entry.paxSize;
    } else if (size < 0) throw new TarError(`entry '${entry.path}' has a base-256 size and no PAX size`);
    const receiving = this.onEntry(entry);
    if (receiving instanceof Promise) {
      return receiving.then((r) => {
        this.receiver = r;
        this.startBytes('data', entry.size);
      });
    }
    this.receiver = receiving;
    this.startBytes('data', entry.size);
    return undefined;
  }

  /** `size` bytes of `state`, then the padding to the next block. */
  private startBytes(state: 'data' | 'pax', size: number): void {
    this.state = state;
    this.left = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.entryDone();
  }
}

const isGzip = (start: Buffer) => start[0] === 0x1f && start[1] === 0x8b;

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 8) if (block.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

/** A ustar header, checked: its checksum, its magic, its numbers. */
function parseHeader(block: Buffer): TarEntry {
  const sum = octalField(block, 148, 8, 'checksum');
  let actual = 0;
  for (let i = 0; i < BLOCK; i++) actual += i >= 148 && i < 156 ? 0x20 : block[i]!;
  if (sum !== actual) throw new TarError('not a tar (a header’s checksum is wrong)');
  if (block.toString('latin1', 257, 263) !== 'ustar\0' || block.toString('latin1', 263, 265) !== '00') {
    throw new TarError('not a POSIX ustar archive');
  }
  const flag = String.fromCharCode(block[156]!);
  const type = TYPES[flag];
  if (!type) throw new TarError(`an entry of unknown type '${flag}'`);
  const name = cString(block, 0, 100);
  const prefix = cString(block, 345, 155);
  // A size past ustar's octal field is written in base-256 (its first bit set), with the real one in a PAX header.
  const size = block[124]! & 0x80 ? -1 : octalField(block, 124, 12, 'size');
  return { path: prefix ? `${prefix}/${name}` : name, type, size };
}

function cString(block: Buffer, at: number, length: number): string {
  const end = block.indexOf(0, at);
  return block.toString('utf8', at, end === -1 || end > at + length ? at + length : end);
}

/** An octal number field (digits, then spaces or NULs); base-256 numbers are refused (PAX carries large sizes). */
function octalField(block: Buffer, at: number, length: number, what: string): number {
  const text = block.toString('latin1', at, at + length).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]*$/.test(text)) throw new TarError(`not a tar (a header’s ${what} is not an octal number)`);
  return text === '' ? 0 : parseInt(text, 8);
}

/** PAX records: `LENGTH KEY=VALUE\n`, LENGTH counting the whole record in bytes. */
function parsePax(data: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = space > at ? Number(data.toString('latin1', at, space)) : NaN;
    if (!Number.isInteger(length) || length <= space - at + 1 || at + length > data.length || data[at + length - 1] !== 0x0a) {
      throw new TarError('a PAX header that is not well formed');
    }
    const record = data.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq <= 0) throw new TarError('a PAX header that is not well formed');
    fields.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return fields;
}
