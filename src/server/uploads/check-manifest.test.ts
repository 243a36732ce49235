import { describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../../protocol/types.js';
import { UPLOAD_LIMITS } from '../config.js';
import { checkManifest } from './upload-service.js';

const sha = 'a'.repeat(64);
const entry = (path: string, size = 1): ManifestEntry => ({ path, size, mode: 0o644, sha256: sha });
const check = (files: ManifestEntry[], limits = UPLOAD_LIMITS.session) => () => checkManifest({ purpose: 'session', files }, limits);

describe('checkManifest', () => {
  it('accepts an ordinary manifest, the same content under two names included', () => {
    expect(check([entry('main.py'), entry('lib/copy.py')])).not.toThrow();
  });

  it.each([
    ['an empty upload', [], /holds no files/],
    ['a path listed twice', [entry('a.py'), entry('a.py')], /lists 'a.py' twice/],
    ['case twins', [entry('Data.csv'), entry('data.csv')], /differ only by case or Unicode normalisation/],
    ['Unicode twins', [entry('caf\u00e9'), entry('cafe\u0301')], /differ only by case or Unicode normalisation/],
    ['a dot-dot path', [entry('../x')], /'\.\.'/],
    ['an absolute path', [entry('/etc/passwd')], /absolute path/],
    ['a hash that is not sha256 hex', [{ ...entry('a.py'), sha256: 'xyz' }], /no valid sha256/],
  ])('refuses %s', (_what, files, message) => {
    expect(check(files as ManifestEntry[])).toThrow(message);
  });

  it('refuses what is over the limits, saying the limit', () => {
    const limits = { maxFiles: 2, maxTotalBytes: 100, maxFileBytes: 60, maxDepth: 2, maxPathLength: 20 };
    expect(check([entry('a'), entry('b'), entry('c')], limits)).toThrow(/3 files; the limit is 2/);
    expect(check([entry('a', 61)], limits)).toThrow(/'a' is 61 bytes; the limit for one file is 60/);
    expect(check([entry('a', 60), entry('b', 41)], limits)).toThrow(/the upload is 101 bytes; the limit is 100/);
    expect(check([entry('a/b/c')], limits)).toThrow(/deeper than 2 folders/);
    expect(check([entry('x'.repeat(21))], limits)).toThrow(/longer than 20 characters/);
  });
});
