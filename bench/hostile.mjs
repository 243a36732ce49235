// The server beside hostile sessions: how fast it answers everyone while a session's events
// file is a sparse 20 GiB file, and how far past its disk limit a session writing as fast as it
// can gets before it is stopped. Each beside its baseline, in the same run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_PASSWORD, KHD, median, projectWith, run, spread, startBenchServer } from './server.mjs';

const MB = 1024 * 1024;

/** The built CLI; resolves with its output and wall time in ms. */
async function khd(env, args, cwd) {
  const r = await run(process.execPath, [KHD, ...args], { env, cwd, input: args[0] === 'login' ? BENCH_PASSWORD : '', allowFailure: args.includes('-i') });
  return { ...r, ms: r.seconds * 1000 };
}

async function loggedIn(server, dir) {
  const env = { ...process.env, KHD_SERVER: server.url, KHD_CONFIG_DIR: join(dir, 'config'), KHD_NO_KEYRING: '1' };
  await khd(env, ['login', '-u', 'admin', '--password-stdin']);
  return env;
}


const range = (xs) => spread(xs, 'ms', 0);

/** `khd ps -a` on a clean server and beside a session whose events file is a sparse 20 GiB file. */
async function psBesideSparseEvents(work, runs) {
  const clean = await startBenchServer(join(work, 'clean'));
  const hostile = await startBenchServer(join(work, 'hostile'));
  try {
    const cleanEnv = await loggedIn(clean, join(work, 'clean'));
    const hostileEnv = await loggedIn(hostile, join(work, 'hostile'));
    const sparse = projectWith(join(work, 'sparse'), "import os, time\nopen(os.environ['KHD_EVENTS_FILE'], 'a').truncate(20 * 2**30)\nprint('done', flush=True)\ntime.sleep(600)\n");
    const plain = projectWith(join(work, 'plain'), 'print("hello")\n');
    await khd(cleanEnv, ['run', '-i'], plain);
    await khd(hostileEnv, ['run', '-i'], plain);
    await khd(hostileEnv, ['run'], sparse);
    const first = (await khd(hostileEnv, ['ps', '-a'])).ms;
    const a = [];
    const b = [];
    for (let i = 0; i < runs; i++) {
      a.push((await khd(cleanEnv, ['ps', '-a'])).ms);
      b.push((await khd(hostileEnv, ['ps', '-a'])).ms);
    }
    return {
      name: 'khd ps beside a 20 GiB sparse events file',
      khd: `${median(b).toFixed(0)} ms (${range(b)}; the first ${first.toFixed(0)} ms)`,
      baseline: `${median(a).toFixed(0)} ms (${range(a)}) on a server without it`,
      ratio: median(b) / median(a),
      target: 'well under 1 s',
    };
  } finally {
    clean.stop();
    hostile.stop();
  }
}

/** A session writing 64 MB files as fast as it can, against `--max-disk`: what it wrote before it was stopped. */
async function diskOvershoot(work, limitMb) {
  const server = await startBenchServer(join(work, 'disk'), ['--max-disk', `${limitMb}M`]);
  try {
    const env = await loggedIn(server, join(work, 'disk'));
    const code = `import os, time
chunk = os.urandom(${MB}) * 64
start = time.time()
written = 0
i = 0
while True:
    with open('fill%d' % i, 'wb') as f:
        f.write(chunk)
    i += 1
    written += len(chunk)
    print('written', written, 'in', round(time.time() - start, 3), flush=True)
`;
    const r = await khd(env, ['run', '-i'], projectWith(join(work, 'writer'), code));
    const last = [...r.stdout.matchAll(/written (\d+) in ([\d.]+)/g)].at(-1);
    const written = Number(last?.[1] ?? 0);
    const seconds = Number(last?.[2] ?? 0);
    return {
      name: `disk written before the stop, at ${(written / seconds / 1e9).toFixed(2)} GB/s`,
      khd: `${(written / MB).toFixed(0)} MB (${((written / MB - limitMb) / limitMb * 100).toFixed(0)}% over)`,
      baseline: `${limitMb} MB limit`,
      ratio: written / (limitMb * MB),
      target: '≤ 1.07× (a 16th of the limit)',
    };
  } finally {
    server.stop();
  }
}

export async function benchHostile(scale) {
  const work = mkdtempSync(join(tmpdir(), 'khd-bench-hostile-'));
  try {
    return [await psBesideSparseEvents(work, scale.runs), await diskOvershoot(work, scale.diskLimitMb)];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
