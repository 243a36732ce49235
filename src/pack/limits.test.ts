import { describe, expect, it } from 'vitest';
import type { IncludedFile } from './scan.js';
import { collisionProblem, limitProblem } from './limits.js';

const stamp = { size: 0n, mtimeNs: 0n, ctimeNs: 0n, ino: 0n, dev: 0n };
const f = (path: string, size: number): IncludedFile => ({ path, size, mode: 0o644, stamp });
const limits = { maxFiles: 5, maxTotalBytes: 10 * 1024 ** 2, maxFileBytes: 4 * 1024 ** 2, maxDepth: 3, maxPathLength: 100 };

describe('limitProblem', () => {
  it('is silent when the upload fits', () => {
    expect(limitProblem([f('main.py', 10)], limits)).toBeUndefined();
  });

  it('says what is over, names the largest folders and files, and suggests .nsmlignore lines', () => {
    const files = [f('main.py', 100), ...Array.from({ length: 6 }, (_, i) => f(`data/raw/p${i}.npy`, 2 * 1024 ** 2)), f('weights.pth', 5 * 1024 ** 2)];
    expect(limitProblem(files, limits)).toBe(
      [
        "the project is over the server's upload limits: 8 files (the server takes 5); 17.0 MB in all (the server takes 10.0 MB); 1 file(s) over 4.0 MB each.",
        'Largest folders:',
        '  data/  6 files, 12.0 MB',
        'Largest files:',
        '  weights.pth  5.0 MB',
        '  data/raw/p0.npy  2.0 MB',
        '  data/raw/p1.npy  2.0 MB',
        '  data/raw/p2.npy  2.0 MB',
        '  data/raw/p3.npy  2.0 MB',
        'Leave out what the session does not need, e.g. in .nsmlignore:',
        '  data/',
        '  weights.pth',
        '  data/raw/p0.npy',
      ].join('\n'),
    );
  });

  it('catches paths deeper than the server allows', () => {
    expect(limitProblem([f('a/b/c/d.py', 1)], limits)).toMatch(/1 file\(s\) deeper than 3 folders/);
  });
});

describe('collisionProblem', () => {
  it('refuses paths that differ only by case or Unicode normalisation', () => {
    expect(collisionProblem([f('Model.py', 1), f('model.py', 1)])).toBe(
      "'Model.py' and 'model.py' differ only by case or Unicode normalisation: rename one (they would collide)",
    );
    expect(collisionProblem([f('caf\u00e9.py', 1), f('cafe\u0301.py', 1)])).toMatch(/differ only by case or Unicode normalisation/);
    expect(collisionProblem([f('a.py', 1), f('b.py', 1)])).toBeUndefined();
  });
});
