// The khd server the benches run against: the built binary on a free loopback port, in the
// sandbox where bubblewrap is installed (as sessions would run in production).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KHD = fileURLToPath(new URL('../bin/khd.js', import.meta.url));
export const BENCH_PASSWORD = 'bench-admin-password';

/** Starts `khd server` with its data dir under `work` (and `flags`); resolves once it listens. */
export async function startBenchServer(work, flags = [], env = process.env) {
  const sandbox = spawnSync('sh', ['-c', 'command -v bwrap']).status === 0 ? [] : ['--no-sandbox'];
  const child = spawn(process.execPath, [KHD, 'server', '--port', '0', '--data-dir', join(work, 'data'), ...sandbox, ...flags], {
    env: { ...env, KHD_ADMIN_PASSWORD: BENCH_PASSWORD },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const url = await new Promise((resolve) => child.stdout.on('data', (c) => /listening on (\S+)/.test(c) && resolve(/listening on (\S+)/.exec(c)[1])));
  return { url, pid: child.pid, sandboxed: sandbox.length === 0, stop: () => child.kill('SIGTERM') };
}

/**
 * Runs a command without blocking this process, whose event loop serves what the command talks
 * to (a proxy, a baseline's server); resolves with its output and wall time. A non-zero exit
 * rejects, unless `allowFailure` (`khd run -i` exits with its session's code).
 */
export function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.stdin.end(options.input ?? '');
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (code === 0 || options.allowFailure) resolve({ seconds, stdout, stderr, code });
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`));
    });
  });
}

/** A project folder: `files` by name, or one main.py when given a string. */
export function projectWith(dir, files) {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(typeof files === 'string' ? { 'main.py': files } : files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** The `p`th percentile of `xs` (50: the median). */
export const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
export const median = (xs) => percentile(xs, 50);
/** `0.41–0.52 s` or `195–242 ms`: the spread of measurements, in their unit. */
export const spread = (xs, unit, digits) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)} ${unit}`;
