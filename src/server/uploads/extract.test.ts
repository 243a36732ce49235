import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { craftTar, gz, manifestOf, type CraftedEntry } from '../../../test/helpers/craft-tar.js';
import { UPLOAD_LIMITS } from '../config.js';
import type { ManifestEntry } from '../../protocol/types.js';
import { receiveContents, type BlobSink } from './extract.js';
import { layOut } from './trees.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'khd-extract-'));
  mkdirSync(join(root, 'tmp'));
  mkdirSync(join(root, 'blobs'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const files = { 'main.py': 'print("hi")\n', 'lib/util.py': 'X = 1\n' };
const honest: CraftedEntry[] = [
  { path: 'main.py', body: files['main.py'] },
  { path: 'lib/', type: 'Directory', mode: 0o755 },
  { path: 'lib/util.py', body: files['lib/util.py'] },
];

let counter = 0;
/** A content store on disk: verified contents land in blobs/ under their hash. */
const sink: BlobSink = {
  tmpFile: () => join(root, 'tmp', `t${++counter}`),
  commit: async (tmp, sha) => renameSync(tmp, join(root, 'blobs', sha)),
  store: async (data, sha) => writeFileSync(join(root, 'blobs', sha), data),
};
const stored = () => readdirSync(join(root, 'blobs')).sort();
const wantedOf = (manifest: ManifestEntry[]) => new Map(manifest.map((e) => [e.path, e]));

function receive(body: Buffer | Readable, manifest = manifestOf(files), gzip = true) {
  const stream = body instanceof Readable ? body : Readable.from([body]);
  return receiveContents(stream, gzip, wantedOf(manifest), sink, UPLOAD_LIMITS.session);
}

/** After a refusal no temporary file may be left behind, and nothing was laid out. */
function expectNothingLeft() {
  expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  expect(existsSync(join(root, 'dest'))).toBe(false);
}

describe('receiveContents and layOut', () => {
  it('stores each content under its hash and lays the files out with the manifest’s modes', async () => {
    const manifest = manifestOf(files).map((e) => (e.path === 'main.py' ? { ...e, mode: 0o755 } : e));
    await receive(gz(craftTar(honest)), manifest);
    expect(stored()).toEqual(manifest.map((e) => e.sha256).sort());
    await layOut(join(root, 'dest'), manifest, (sha) => join(root, 'blobs', sha));
    expect(readFileSync(join(root, 'dest/lib/util.py'), 'utf8')).toBe('X = 1\n');
    expect(statSync(join(root, 'dest/main.py')).mode & 0o7777).toBe(0o755);
    expect(statSync(join(root, 'dest/lib/util.py')).mode & 0o7777).toBe(0o644);
    expect(readdirSync(root).sort()).toEqual(['blobs', 'dest', 'tmp']);
  });

  it('receives a large content that arrives in one piece, more than its write queue holds, and files sent without a hash', async () => {
    // 20 MB in one chunk: the file's write queue is over its limit when the entry ends, and the
    // reader must wait for it to drain before ending the file (ended first, it never drained).
    const big = randomBytes(20 * 1024 * 1024).toString('latin1');
    const manifest = manifestOf({ ...files, 'weights.bin': big }).map((e) => (e.path === 'main.py' ? { path: e.path, size: e.size, mode: e.mode } : e));
    const hashes = new Map<string, string>();
    const noting: BlobSink = { ...sink, store: async (data, sha, entry) => (hashes.set(entry.path, sha), sink.store(data, sha, entry)) };
    await receiveContents(Readable.from([craftTar([...honest, { path: 'weights.bin', body: big }])]), false, wantedOf(manifest as ManifestEntry[]), noting, UPLOAD_LIMITS.session);
    expect(stored()).toEqual(manifestOf({ ...files, 'weights.bin': big }).map((e) => e.sha256).sort());
    // main.py came without a hash: it is stored under the one its bytes have.
    expect(hashes.get('main.py')).toBe(manifestOf(files)[0]!.sha256);
  });

  it('keeps the contents that arrived whole when the rest never comes (the next run sends only the rest)', async () => {
    await receive(gz(craftTar([honest[0]!])));
    expect(stored()).toEqual([manifestOf({ 'main.py': files['main.py'] })[0]!.sha256]);
  });

  it('lays out nothing when a content is missing', async () => {
    await expect(layOut(join(root, 'dest'), manifestOf(files), (sha) => join(root, 'blobs', sha))).rejects.toThrow(/ENOENT/);
    expect(readdirSync(root).sort()).toEqual(['blobs', 'tmp']);
  });

const deep = (n: number) => `${'a/'.repeat(n)}x.py`;
  const hostile: Record<string, { entries: CraftedEntry[]; manifest?: Record<string, string>; error: RegExp }> = {
    'symlink entry': { entries: [...honest, { path: 'evil', type: 'SymbolicLink', linkpath: '/etc/passwd' }], error: /SymbolicLink/ },
    'symlink, then a file through it': {
      entries: [{ path: 'lib', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'lib/util.py', body: files['lib/util.py'] }],
      error: /'lib' is a SymbolicLink/,
    },
    'folder replaced by a link': {
      entries: [honest[1]!, { path: 'lib', type: 'SymbolicLink', linkpath: '/' }, honest[2]!],
      error: /'lib' is a SymbolicLink/,
    },
    'hardlink entry': { entries: [...honest, { path: 'evil', type: 'Link', linkpath: '/etc/shadow' }], error: /Link/ },
    'character device entry': { entries: [...honest, { path: 'tty', type: 'CharacterDevice' }], error: /CharacterDevice/ },
    'block device entry': { entries: [...honest, { path: 'sda', type: 'BlockDevice' }], error: /BlockDevice/ },
    'FIFO entry': { entries: [...honest, { path: 'pipe', type: 'FIFO' }], error: /FIFO/ },
    'absolute path': { entries: [...honest, { path: '/tmp/evil', body: 'x' }], error: /absolute path/ },
    'absolute path with repeated slashes (////abs)': { entries: [...honest, { path: '////etc/evil', body: 'x' }], error: /absolute path/ },
    'dot-dot path': { entries: [...honest, { path: 'lib/../../evil', body: 'x' }], error: /'\.\.'/ },
    'backslash path': { entries: [...honest, { path: '..\\evil', body: 'x' }], error: /backslash/ },
    'drive-letter path': { entries: [...honest, { path: 'C:../evil', body: 'x' }], error: /drive-letter/ },
    '1,500-deep path': { entries: [{ path: deep(1500), body: 'x' }], manifest: { [deep(1500)]: 'x' }, error: /longer than 1024 characters/ },
    '40-deep path (under the length cap)': { entries: [{ path: deep(40), body: 'x' }], manifest: { [deep(40)]: 'x' }, error: /deeper than 32 folders/ },
    'file not in the manifest': { entries: [...honest, { path: 'extra.py', body: 'x' }], error: /not in the manifest/ },
    'upper-case twin of a manifest path': { entries: [{ path: 'MAIN.py', body: files['main.py'] }], error: /not in the manifest/ },
    'Unicode-normalisation twin of a manifest path': {
      entries: [{ path: 'cafe\u0301.py', body: 'x' }],
      manifest: { 'caf\u00e9.py': 'x' },
      error: /not in the manifest/,
    },
    'file listed twice': { entries: [...honest, { path: 'main.py', body: files['main.py'] }], error: /twice/ },
    'content that differs from its hash': {
      entries: [{ path: 'main.py', body: 'print("HI")\n' }, honest[2]!],
      error: /sha256/,
    },
    'size that differs from the manifest': {
      entries: [{ path: 'main.py', body: 'short' }, honest[2]!],
      error: /the manifest says/,
    },
    'PAX header whose size disagrees with the ustar header': {
      entries: [{ path: 'main.py', body: files['main.py'], paxSize: 5 }, honest[2]!],
      error: /PAX header as well as in its ustar header/,
    },
    'PAX header that repeats the ustar size (two sizes for one entry)': {
      entries: [{ path: 'main.py', body: files['main.py'], paxSize: files['main.py'].length }, honest[2]!],
      error: /PAX header as well as in its ustar header/,
    },
  };

  for (const [name, { entries, manifest, error }] of Object.entries(hostile)) {
    it(`refuses a ${name} and leaves nothing behind`, async () => {
      await expect(receive(gz(craftTar(entries)), manifest && manifestOf(manifest))).rejects.toThrow(error);
      expectNothingLeft();
    });
  }

  it('lays out setuid and 0777 modes as 0755 and 0644: no special bits survive', async () => {
    const manifest = manifestOf(files).map((e) => ({ ...e, mode: e.path === 'main.py' ? 0o4777 : 0o2666 }));
    await receive(gz(craftTar(honest.map((e) => ({ ...e, mode: 0o6777 })))), manifest);
    await layOut(join(root, 'dest'), manifest, (sha) => join(root, 'blobs', sha));
    expect(statSync(join(root, 'dest/main.py')).mode & 0o7777).toBe(0o755);
    expect(statSync(join(root, 'dest/lib/util.py')).mode & 0o7777).toBe(0o644);
    expect(statSync(join(root, 'dest/lib')).mode & 0o7777).toBe(0o755);
  });

  it('refuses 100,000 empty entries, counting them while streaming', async () => {
    const folders = Array.from({ length: 100_000 }, (_, i): CraftedEntry => ({ path: `d${i}/`, type: 'Directory', mode: 0o755 }));
    await expect(receive(gz(craftTar([...honest, ...folders])))).rejects.toThrow(/inflates to over 1 MB|more than 20000 entries/);
    expectNothingLeft();
  });

  it('refuses a gzip bomb (256 MiB of zeros after the archive) before inflating it all', async () => {
    const gzip = createGzip({ level: 9 });
    const compressed: Buffer[] = [];
    gzip.on('data', (c: Buffer) => compressed.push(c));
    gzip.write(craftTar(honest));
    const zeros = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 256; i++) if (!gzip.write(zeros)) await new Promise((r) => gzip.once('drain', r));
    await new Promise((r) => gzip.end(r));
    const bomb = Buffer.concat(compressed);
    expect(bomb.length).toBeLessThan(512 * 1024);
    await expect(receive(bomb)).rejects.toThrow(/inflates to over 1 MB/);
    expectNothingLeft();
    // What arrived before the zeros is kept.
    expect(stored()).toEqual(manifestOf(files).map((e) => e.sha256).sort());
  });

  it('refuses a second layer of gzip inside the first that would inflate further', async () => {
    await expect(receive(gz(gz(craftTar(honest))))).rejects.toThrow('upload refused: the tar is gzipped twice');
    expectNothingLeft();
  });

  it('refuses a truncated archive (an upload cut off midway)', async () => {
    // Incompressible, so that half of the gzip stream ends inside big.bin.
    const big = randomBytes(100_000).toString('base64');
    const whole = gz(craftTar([...honest, { path: 'big.bin', body: big }]));
    const manifest = manifestOf({ ...files, 'big.bin': big });
    // Arriving in pieces, as over a network, then cut.
    const cut = whole.subarray(0, Math.floor(whole.length / 2));
    const pieces = Array.from({ length: Math.ceil(cut.length / 4096) }, (_, i) => cut.subarray(i * 4096, (i + 1) * 4096));
    const body = Readable.from((async function* () {
      for (const p of pieces) {
        await new Promise((r) => setImmediate(r));
        yield p;
      }
    })());
    await expect(receive(body, manifest)).rejects.toThrow(/upload refused/);
    expectNothingLeft();
    // What came whole and was verified before the cut is kept (at least the first file).
    expect(stored()).toContain(manifest.find((e) => e.path === 'main.py')!.sha256);
    expect(stored()).not.toContain(manifest.find((e) => e.path === 'big.bin')!.sha256);
  });

  it('refuses bytes that are not a gzipped tar', async () => {
    await expect(receive(Buffer.from('this is not an archive at all, just text '.repeat(40)))).rejects.toThrow(/upload refused/);
    expectNothingLeft();
  });

  it('refuses an empty body', async () => {
    await expect(receive(Buffer.alloc(0))).rejects.toThrow(/upload refused/);
    expectNothingLeft();
  });

  it('refuses a connection that dies mid-stream', async () => {
    const body = new Readable({ read() {} });
    const whole = gz(craftTar(honest));
    body.push(whole.subarray(0, 20));
    const pending = receive(body);
    setTimeout(() => body.destroy(new Error('socket hang up')), 20);
    await expect(pending).rejects.toThrow(/socket hang up|connection closed/);
    expectNothingLeft();
  });
});
