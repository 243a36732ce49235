// A project's own packages: what a run with requirements costs once its layer is cached (a hit),
// beside the same run without requirements, on one server, interleaved. And the first install.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_PASSWORD, KHD, median, projectWith, run, spread, startBenchServer } from './server.mjs';

const MAKE_WHEELS = fileURLToPath(new URL('../test/helpers/make_wheels.py', import.meta.url));
const range = (xs) => spread(xs, 's', 2);


export async function benchEnvironments(runs) {
  const work = mkdtempSync(join(tmpdir(), 'khd-bench-env-'));
  try {
    const wheels = join(work, 'wheels');
    mkdirSync(wheels);
    chmodSync(wheels, 0o755);
    execFileSync('python3', [MAKE_WHEELS, wheels, JSON.stringify([{ name: 'khd-bench-pkg', version: '1.0', source: 'X = 1\n' }])]);
    const server = await startBenchServer(work, ['--pip-find-links', wheels]);
    try {
      const env = { ...process.env, KHD_SERVER: server.url, KHD_CONFIG_DIR: join(work, 'config'), KHD_NO_KEYRING: '1' };
      await run(process.execPath, [KHD, 'login', '-u', 'admin', '--password-stdin'], { env, input: BENCH_PASSWORD });
      const withReqs = projectWith(join(work, 'with'), { 'main.py': 'import khd_bench_pkg\nprint(khd_bench_pkg.X)\n', 'requirements.txt': 'khd-bench-pkg==1.0\n' });
      const without = projectWith(join(work, 'without'), { 'main.py': 'print(1)\n' });
      const first = (await run(process.execPath, [KHD, 'run', '-i'], { env, cwd: withReqs })).seconds;
      await run(process.execPath, [KHD, 'run', '-i'], { env, cwd: without });
      const hit = [];
      const plain = [];
      for (let i = 0; i < runs; i++) {
        hit.push((await run(process.execPath, [KHD, 'run', '-i'], { env, cwd: withReqs })).seconds);
        plain.push((await run(process.execPath, [KHD, 'run', '-i'], { env, cwd: without })).seconds);
      }
      return [
        {
          name: 'khd run -i with a cached requirements layer',
          khd: `${median(hit).toFixed(2)} s (${range(hit)}); the first run, installing: ${first.toFixed(2)} s`,
          baseline: `${median(plain).toFixed(2)} s (${range(plain)}) without requirements`,
          ratio: median(hit) / median(plain),
          target: '≈ 1× (nothing installed)',
        },
      ];
    } finally {
      server.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
