import { describe, expect, it } from 'vitest';
import { craftTar, type CraftedEntry } from '../../../test/helpers/craft-tar.js';
import { type EntryReceiver, type TarEntry, TarReader } from './tar-reader.js';

interface Read {
  entry: TarEntry;
  body: string;
}

/** Reads `tar` fed in pieces of `step` bytes; the entries and their bodies. */
function readAll(tar: Buffer, step = tar.length): Read[] {
  const read: Read[] = [];
  const reader = new TarReader((entry) => {
    const r: Read = { entry, body: '' };
    read.push(r);
    return { data: (piece) => void (r.body += piece.toString('latin1')), end: () => undefined };
  });
  for (let at = 0; at < tar.length; at += step) expect(reader.feed(tar.subarray(at, at + step))).toBeUndefined();
  reader.finish();
  return read;
}

/** A header block of `tar` at `at` with its bytes changed by `edit`, its checksum made right again. */
function patched(tar: Buffer, at: number, edit: (block: Buffer) => void): Buffer {
  const out = Buffer.from(tar);
  const block = out.subarray(at, at + 512);
  edit(block);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return out;
}

const long = `${'deep/'.repeat(40)}model.py`;
/** A PAX header entry with `body` as its records (its size given: craftTar gives other types none). */
const pax = (path: string, body: string): CraftedEntry => ({ path, type: 'ExtendedHeader', body, size: Buffer.byteLength(body) });
const entries: CraftedEntry[] = [
  { path: 'main.py', body: 'print(1)\n' },
  { path: 'lib/', type: 'Directory', mode: 0o755 },
  { path: 'lib/empty.py', body: '' },
  { path: long, body: 'L'.repeat(1500) },
  { path: '데이터/한글.txt', body: 'ok' },
];

describe('TarReader', () => {
  it('reads what node-tar writes (PAX long and non-ASCII paths, folders, empty files), fed whole or a byte at a time', () => {
    const tar = craftTar(entries);
    for (const step of [tar.length, 1, 511, 513, 4096]) {
      const read = readAll(tar, step);
      expect(read.map((r) => [r.entry.path, r.entry.type, r.entry.size, r.body.length]), `step ${step}`).toEqual([
        ['main.py', 'File', 9, 9],
        ['lib/', 'Directory', 0, 0],
        ['lib/empty.py', 'File', 0, 0],
        [long, 'File', 1500, 1500],
        ['데이터/한글.txt', 'File', 2, 2],
      ]);
      expect(read[3]!.body).toBe('L'.repeat(1500));
    }
  });

  it('names the type of what is not a file or folder, and gives a PAX size to the caller to judge', () => {
    const read = readAll(craftTar([{ path: 'evil', type: 'SymbolicLink', linkpath: '/etc/passwd' }, { path: 'dev', type: 'CharacterDevice' }, { path: 'a.py', body: 'x', paxSize: 1 }]));
    expect(read.map((r) => [r.entry.path, r.entry.type, r.entry.paxSize])).toEqual([
      ['evil', 'SymbolicLink', undefined],
      ['dev', 'CharacterDevice', undefined],
      ['a.py', 'File', 1],
    ]);
  });

  const honest = craftTar([{ path: 'main.py', body: 'print(1)\n' }]);
  const refused: Record<string, [Buffer, string]> = {
    'a header whose checksum is wrong': [(() => { const b = Buffer.from(honest); b[0] = 0x4d; return b; })(), 'not a tar (a header’s checksum is wrong)'],
    'an old GNU header': [patched(honest, 0, (b) => b.write('ustar  \0', 257, 'latin1')), 'not a POSIX ustar archive'],
    'a header of unknown type': [patched(honest, 0, (b) => b.write('Z', 156, 'latin1')), "an entry of unknown type 'Z'"],
    'a size that is not octal': [patched(honest, 0, (b) => b.write('0000000009 \0', 124, 'latin1')), 'size is not an octal number'],
    'a base-256 size without PAX': [patched(honest, 0, (b) => b.writeUInt8(0x80, 124)), "entry 'main.py' has a base-256 size and no PAX size"],
    'a global PAX header': [craftTar([{ path: 'g', type: 'GlobalExtendedHeader', body: '11 path=x\n' }, { path: 'main.py', body: 'x' }]), 'a GlobalExtendedHeader header'],
    'a GNU long name': [craftTar([{ path: '././@LongLink', type: 'NextFileHasLongPath', body: 'x'.repeat(200) }, { path: 'main.py', body: 'x' }]), 'a NextFileHasLongPath header'],
    'two PAX headers in a row': [craftTar([pax('p1', '10 path=x\n'), pax('p2', '10 path=y\n'), { path: 'main.py', body: 'x' }]), 'two PAX headers in a row'],
    'a PAX header that is not well formed': [craftTar([pax('p', '99 path=x\n'), { path: 'main.py', body: 'x' }]), 'a PAX header that is not well formed'],
    'a PAX header of 1 MB': [craftTar([pax('p', 'x'.repeat(1024 * 1024))]), 'a PAX header of 1048576 bytes (at most 65536)'],
    'a PAX header at the end': [craftTar([pax('p', '10 path=x\n')]), 'a PAX header is followed by the end of the archive'],
    'an entry after one end block': [Buffer.concat([Buffer.alloc(512), honest]), 'data after an end block'],
    'a tar cut off inside a file': [honest.subarray(0, 700), 'the tar ends before its end blocks (the upload was cut off)'],
    'a tar without its end blocks': [honest.subarray(0, 1024), 'the tar ends before its end blocks (the upload was cut off)'],
    'an empty body': [Buffer.alloc(0), 'the body holds no tar'],
    'a gzip stream': [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]), 'the tar is gzipped twice'],
  };
  for (const [what, [tar, message]] of Object.entries(refused)) {
    it(`refuses ${what}`, () => {
      expect(() => readAll(tar)).toThrow(message);
    });
  }

  it('waits while a receiver holds it back, then ends its entry and goes on where it stopped', async () => {
    const tar = craftTar([{ path: 'a', body: 'A'.repeat(1000) }, { path: 'b', body: 'B'.repeat(10) }]);
    let release!: () => void;
    const seen: string[] = [];
    const reader = new TarReader((entry): EntryReceiver => ({
      data: (piece) => {
        seen.push(`${entry.path}:${piece.length}`);
        if (entry.path === 'a') return new Promise<void>((resolve) => (release = resolve));
        return undefined;
      },
      end: () => void seen.push(`${entry.path}:end`),
    }));
    const waiting = reader.feed(tar);
    expect(waiting).toBeInstanceOf(Promise);
    // Its end comes after the wait: a file being written is not closed while a write is pending.
    expect(seen).toEqual(['a:1000']);
    release();
    await waiting;
    expect(seen).toEqual(['a:1000', 'a:end', 'b:10', 'b:end']);
    reader.finish();
  });
});
