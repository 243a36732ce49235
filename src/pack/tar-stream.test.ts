import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UPLOAD_LIMITS } from '../server/config.js';
import { receiveContents } from '../server/uploads/extract.js';
import type { ManifestEntry } from '../protocol/types.js';
import { ReadCache } from './manifest.js';
import { Header } from 'tar';
import { FileChangedError, incompressibleShare, packStream, ustarInto } from './tar-stream.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'khd-pack-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function file(path: string, content: string): ManifestEntry {
  mkdirSync(join(root, 'src', path, '..'), { recursive: true });
  const bytes = Buffer.from(content, 'latin1');
  writeFileSync(join(root, 'src', path), bytes);
  return { path, size: bytes.length, mode: 0o644, sha256: createHash('sha256').update(bytes).digest('hex') };
}

async function roundTrip(files: ManifestEntry[], kept?: ReadCache): Promise<string[]> {
  mkdirSync(join(root, 'blobs'));
  let n = 0;
  const sent: string[] = [];
  const packed = await packStream(join(root, 'src'), files, (e) => sent.push(`${e.index}/${e.count} ${e.path}`), kept);
  await receiveContents(
    packed.stream,
    packed.contentType === 'application/gzip',
    new Map(files.map((f) => [f.path, f])),
    {
      tmpFile: () => join(root, `tmp${++n}`),
      commit: async (tmp, sha) => {
        writeFileSync(join(root, 'blobs', sha), '');
        rmSync(tmp);
      },
      store: async (_data, sha) => writeFileSync(join(root, 'blobs', sha), ''),
    },
    UPLOAD_LIMITS.session,
  );
  return sent;
}

describe('ustarInto', () => {
  it('writes the header node-tar writes, byte for byte, and leaves to node-tar what needs PAX', () => {
    const paths = ['a', 'main.py', 'src/models/resnet.py', `${'d/'.repeat(40)}x.py`, 'with space.txt', 'a'.repeat(99)];
    for (const path of paths) {
      for (const [mode, size] of [[0o644, 0], [0o755, 1], [0o644, 511], [0o644, 8 * 1024 ** 3 - 1], [0o600, 123_456_789]] as const) {
        const theirs = Buffer.alloc(512);
        expect(new Header({ path, mode, size, type: 'File', mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' }).encode(theirs, 0)).toBe(false);
        const ours = Buffer.alloc(512, 0xff);
        expect(ustarInto({ path, mode, size }, ours)).toBe(true);
        expect(ours.equals(theirs), `${path} ${mode.toString(8)} ${size}`).toBe(true);
      }
    }
    for (const path of ['한글/데이터.py', 'a'.repeat(100), `${'long/'.repeat(30)}x.py`, ' leading-space', 'tab\there']) {
      expect(ustarInto({ path, mode: 0o644, size: 1 }, Buffer.alloc(512)), path).toBe(false);
    }
    expect(ustarInto({ path: 'huge.bin', mode: 0o644, size: 8 * 1024 ** 3 }, Buffer.alloc(512))).toBe(false);
  });
});

describe('packStream', () => {
  it('gzips what compresses, and sends a tar of mostly random weights as it is', async () => {
    const text = file('model.py', 'import numpy\n'.repeat(20_000));
    expect((await packStream(join(root, 'src'), [text], () => {})).contentType).toBe('application/gzip');
    const weights = file('weights.bin', randomBytes(400_000).toString('latin1'));
    expect(await incompressibleShare(join(root, 'src'), [text, weights])).toBeGreaterThan(0.5);
    expect((await packStream(join(root, 'src'), [text, weights], () => {})).contentType).toBe('application/x-tar');
  });

  it('writes a tar the server reads, long paths included (PAX), reporting each file once', async () => {
    const long = `${'deep/'.repeat(30)}file.py`;
    const files = [file('a.py', 'A'), file(long, 'L'.repeat(1000)), file('empty', '')];
    expect(await roundTrip(files)).toEqual(['1/3 a.py', `2/3 ${long}`, '3/3 empty']);
    expect(readdirSync(join(root, 'blobs')).sort()).toEqual(files.map((f) => f.sha256).sort());
  });

  it('sends what the hash pass kept in memory: the snapshot the manifest describes, no second read', async () => {
    const f = file('a.py', 'hashed');
    const kept = new ReadCache(1024);
    kept.keep('a.py', Buffer.from('hashed'));
    kept.keep('too-big.bin', Buffer.alloc(2048));
    rmSync(join(root, 'src', 'a.py'));
    expect(await roundTrip([f], kept)).toEqual(['1/1 a.py']);
    expect(kept.take('too-big.bin')).toBeUndefined();
  });

  const changes: [string, (f: ManifestEntry) => void, RegExp][] = [
    ['grew', (f) => writeFileSync(join(root, 'src', f.path), 'hello world, longer now'), /a\.py grew while it was being sent/],
    ['shrank', (f) => writeFileSync(join(root, 'src', f.path), 'h'), /a\.py shrank or vanished/],
    ['changed with the same size', (f) => writeFileSync(join(root, 'src', f.path), 'HELLO'), /a\.py changed while it was being sent/],
    ['vanished', (f) => rmSync(join(root, 'src', f.path)), /a\.py could not be read \(ENOENT\)/],
  ];
  for (const [what, change, message] of changes) {
    it(`stops with the file named when one ${what} after hashing`, async () => {
      const f = file('a.py', 'hello');
      change(f);
      const { stream } = await packStream(join(root, 'src'), [f], () => {});
      const error = await new Promise<Error>((resolve) => {
        stream.on('error', resolve);
        stream.resume();
      });
      expect(error).toBeInstanceOf(FileChangedError);
      expect(error.message).toMatch(message);
    });
  }

  // The stamps' clock an hour ahead: nothing counts as racily clean.
  const later = () => BigInt(Date.now() + 3_600_000) * 1_000_000n;
  // The usual case: the manifest's hash was made by this run, which knows each file's stamp then,
  // so the send checks the stamp instead of hashing again; a small file read ahead and a large
  // one streamed.
  for (const size of [5, 3 * 1024 * 1024]) {
    const kind = size > 1024 * 1024 ? 'large' : 'small';
    const sameSize: [string, (path: string) => void, RegExp][] = [
      ['rewritten with the same size', (p) => writeFileSync(p, Buffer.alloc(size, 'Z')), /changed while it was being sent/],
      ['grew', (p) => writeFileSync(p, Buffer.alloc(size + 10, 'a')), /grew while it was being sent/],
      ['touched, content unchanged', (p) => utimesSync(p, new Date(), new Date(Date.now() + 5000)), /changed while it was being sent/],
    ];
    for (const [what, change, message] of sameSize) {
      it(`stops with the ${kind} file named when it is ${what} after hashing, by its stamp`, async () => {
        const f = file('a.bin', 'a'.repeat(size));
        // An mtime long past: any write moves it, whatever the clock's tick.
        utimesSync(join(root, 'src', 'a.bin'), new Date('2026-01-01'), new Date('2026-01-01'));
        const st = statSync(join(root, 'src', 'a.bin'), { bigint: true });
        const kept = new ReadCache(0, later);
        kept.stamp('a.bin', { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev });
        change(join(root, 'src', 'a.bin'));
        const { stream } = await packStream(join(root, 'src'), [f], () => {}, kept);
        const error = await new Promise<Error | undefined>((resolve) => {
          stream.on('error', resolve);
          stream.on('end', () => resolve(undefined));
          stream.resume();
        });
        expect(error).toBeInstanceOf(FileChangedError);
        expect(error?.message).toMatch(message);
      });
    }

    it(`sends an unchanged ${kind} file by its stamp, and the server finds its hash`, async () => {
      const f = file('a.bin', 'q'.repeat(size));
      const st = statSync(join(root, 'src', 'a.bin'), { bigint: true });
      const kept = new ReadCache(0, later);
      kept.stamp('a.bin', { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev });
      expect(await roundTrip([f], kept)).toEqual(['1/1 a.bin']);
    });
  }
});
