import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const RUN = fileURLToPath(new URL('../../bench/run.mjs', import.meta.url));

// The benches at a small size, so CI knows they still run; their figures are never asserted.
describe('npm run bench (small)', () => {
  it('prints every figure beside its baseline', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [RUN], {
      env: { ...process.env, BENCH_SCALE: 'small' },
      // A bound for a bench that hangs, far above what it takes (about 80 s alone, more beside another suite).
      timeout: 560_000,
    });
    const names = stdout.split('\n').slice(1).filter(Boolean).map((l) => l.split(/\s{2,}/)[0]);
    expect(names).toEqual([
      'node -e 0',
      'khd --version',
      'khd --help',
      expect.stringMatching(/^first upload \(203 files, \d+ MB\), 2 interleaved pairs$/),
      're-run, nothing changed',
      're-run from a fresh clone (cold hash cache, contents on the server)',
      expect.stringMatching(/^session start after the upload( \(no sandbox\))?$/),
      're-run, one 1 MB file changed',
      'khd ps -a (8 sessions listed), 3 runs',
      "another user's GET /sessions during a first upload",
      expect.stringMatching(/^peak memory sending 0\.\d+ GB$/),
      'dashboard: first page, transferred',
      'dashboard: login page drawn',
      'dashboard: session page, 1,000 lines, 2 charts',
      'khd ps beside a 20 GiB sparse events file',
      expect.stringMatching(/^disk written before the stop, at \d+\.\d+ GB\/s$/),
      'log fan-out: 5 followers × 200 lines/s, print to follower',
      'log fan-out: server CPU and peak RSS',
      'one follower reads a 5,000-line log',
      'khd logs --tail 1 on a 5,000-line log',
      '/info while 10 clients tail that log',
      'khd run -i with a cached requirements layer',
      'khd run -i through Slurm',
    ]);
    expect(stdout).toMatch(/\d+\.\d{3}×/);
  }, 600_000);
});
