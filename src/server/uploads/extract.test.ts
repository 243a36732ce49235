import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { craftTar, gz, manifestOf, type CraftedEntry } from '../../../test/helpers/craft-tar.js';
import { UPLOAD_LIMITS } from '../config.js';
import { extractUpload } from './extract.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'khd-extract-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const files = { 'main.py': 'print("hi")\n', 'lib/util.py': 'X = 1\n' };
const honest: CraftedEntry[] = [
  { path: 'main.py', body: files['main.py'] },
  { path: 'lib/', type: 'Directory', mode: 0o755 },
  { path: 'lib/util.py', body: files['lib/util.py'] },
];

function extract(body: Buffer | Readable, manifest = manifestOf(files)) {
  const stream = body instanceof Readable ? body : Readable.from([body]);
  return extractUpload(stream, join(root, 'dest'), manifest, UPLOAD_LIMITS.session);
}

/** After a refusal nothing may be left: no destination, no half-written staging folder. */
function expectNothingLeft() {
  expect(readdirSync(root)).toEqual([]);
}

describe('extractUpload', () => {
  it('lays out an honest upload with the manifest’s modes', async () => {
    await extract(gz(craftTar(honest)));
    expect(readFileSync(join(root, 'dest/lib/util.py'), 'utf8')).toBe('X = 1\n');
    expect(statSync(join(root, 'dest/main.py')).mode & 0o7777).toBe(0o644);
    expect(readdirSync(root)).toEqual(['dest']);
  });

  const hostile: Record<string, { entries: CraftedEntry[]; manifest?: Record<string, string>; error: RegExp }> = {
    'symlink entry': { entries: [...honest, { path: 'evil', type: 'SymbolicLink', linkpath: '/etc/passwd' }], error: /SymbolicLink/ },
    'hardlink entry': { entries: [...honest, { path: 'evil', type: 'Link', linkpath: '/etc/shadow' }], error: /Link/ },
    'character device entry': { entries: [...honest, { path: 'tty', type: 'CharacterDevice' }], error: /CharacterDevice/ },
    'FIFO entry': { entries: [...honest, { path: 'pipe', type: 'FIFO' }], error: /FIFO/ },
    'absolute path': { entries: [...honest, { path: '/tmp/evil', body: 'x' }], error: /absolute path/ },
    'dot-dot path': { entries: [...honest, { path: 'lib/../../evil', body: 'x' }], error: /'\.\.'/ },
    'backslash path': { entries: [...honest, { path: '..\\evil', body: 'x' }], error: /backslash/ },
    'drive-letter path': { entries: [...honest, { path: 'C:../evil', body: 'x' }], error: /drive-letter/ },
    'file not in the manifest': { entries: [...honest, { path: 'extra.py', body: 'x' }], error: /not in the manifest/ },
    'file listed twice': { entries: [...honest, { path: 'main.py', body: files['main.py'] }], error: /twice/ },
    'content that differs from its hash': {
      entries: [{ path: 'main.py', body: 'print("HI")\n' }, honest[2]!],
      error: /sha256/,
    },
    'size that differs from the manifest': {
      entries: [{ path: 'main.py', body: 'short' }, honest[2]!],
      error: /the manifest says/,
    },
    'manifest entry that never arrives': { entries: [honest[0]!], error: /never arrived: lib\/util.py/ },
  };

  for (const [name, { entries, error }] of Object.entries(hostile)) {
    it(`refuses a ${name} and leaves nothing behind`, async () => {
      await expect(extract(gz(craftTar(entries)))).rejects.toThrow(error);
      expectNothingLeft();
    });
  }

  it('refuses a truncated archive (an upload cut off midway)', async () => {
    const whole = gz(craftTar([...honest, { path: 'big.bin', body: 'z'.repeat(100_000) }]));
    const manifest = manifestOf({ ...files, 'big.bin': 'z'.repeat(100_000) });
    await expect(extract(whole.subarray(0, Math.floor(whole.length / 2)), manifest)).rejects.toThrow(/upload refused/);
    expectNothingLeft();
  });

  it('refuses bytes that are not a gzipped tar', async () => {
    await expect(extract(Buffer.from('this is not an archive at all, just text '.repeat(40)))).rejects.toThrow(/upload refused/);
    expectNothingLeft();
  });

  it('refuses an empty body', async () => {
    await expect(extract(Buffer.alloc(0))).rejects.toThrow(/upload refused/);
    expectNothingLeft();
  });

  it('refuses a connection that dies mid-stream', async () => {
    const body = new Readable({ read() {} });
    const whole = gz(craftTar(honest));
    body.push(whole.subarray(0, 20));
    const pending = extract(body);
    setTimeout(() => body.destroy(new Error('socket hang up')), 20);
    await expect(pending).rejects.toThrow(/socket hang up|connection closed/);
    expectNothingLeft();
    expect(existsSync(join(root, 'dest'))).toBe(false);
  });
});
