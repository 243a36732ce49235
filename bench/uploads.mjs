// Upload benches: khd against `tar cf - DIR | curl -T - URL` on the same tree, in interleaved
// pairs, each figure as its median with the range. Bytes are counted by the same kind of proxy
// on both paths. Each pair gets a fresh server and a cold hash cache, and nothing is deleted
// until the end (this disk's ext4 creates files slowly for minutes after mass deletions).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_PASSWORD, KHD, median, percentile, run, spread, startBenchServer } from './server.mjs';
import { makeTree } from './tree.mjs';

/** A TCP proxy in front of `targetPort` that counts the bytes the client sends. */
async function countingProxy(targetPort) {
  let sent = 0;
  const server = createTcpServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    client.on('data', (c) => (sent += c.length));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, take: () => ((n) => ((sent = 0), n))(sent), close: () => server.close() };
}

/** The baseline's server: stores the request body in a file. */
async function storingServer(file) {
  const server = createServer((req, res) => {
    const out = createWriteStream(file);
    req.pipe(out);
    out.on('finish', () => res.end('ok'));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, close: () => server.close() };
}

function treeBytes(dir) {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    total += e.isDirectory() ? treeBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  }
  return total;
}

/**
 * `khd run --json` in `cwd`, under GNU time for its peak memory. `seconds` is the upload: from
 * the start to the `uploaded` event (scan, hash, send, laid out on the server), which is what
 * the baseline does; `total` adds starting the session (its "is started").
 */
function khdRun(env, cwd) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, KHD, 'run', '--json'], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let uploadedAt;
    let stderr = '';
    child.stdout.on('data', (c) => {
      if (uploadedAt === undefined && c.toString().includes('"event":"uploaded"')) uploadedAt = process.hrtime.bigint();
    });
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => {
      if (code !== 0 || uploadedAt === undefined) return reject(new Error(`khd run failed: ${stderr}`));
      resolve({
        seconds: Number(uploadedAt - start) / 1e9,
        total: Number(process.hrtime.bigint() - start) / 1e9,
        rssKb: Number(/maxrss=(\d+)/.exec(stderr)?.[1] ?? 0),
      });
    });
  });
}

/** A fresh config dir, logged in to `url` as `user`. */
async function loggedIn(url, dir, user = 'admin', password = BENCH_PASSWORD) {
  const env = { ...process.env, KHD_SERVER: url, KHD_CONFIG_DIR: dir, KHD_NO_KEYRING: '1' };
  await run(process.execPath, [KHD, 'login', '-u', user, '--password-stdin'], { env, input: password });
  return env;
}

const nodeBare = () => {
  const t = process.hrtime.bigint();
  spawnSync(process.execPath, ['-e', '0']);
  return Number(process.hrtime.bigint() - t) / 1e9;
};

/**
 * Another user's API calls, one after another, while `during` runs (or for `forMs` without it):
 * the latency of each, in ms.
 */
async function apiLatencies(url, token, during) {
  const latencies = [];
  let going = true;
  const loop = (async () => {
    while (going) {
      const t = process.hrtime.bigint();
      const res = await fetch(`${url}/api/v1/sessions?all=1`, { headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  })();
  await during();
  going = false;
  await loop;
  return latencies;
}

const secs = (xs) => `${median(xs).toFixed(2)} s (${spread(xs, 's', 2)})`;
const ms = (xs) => `${(median(xs) * 1000).toFixed(0)} ms (${spread(xs.map((x) => x * 1000), 'ms', 0)})`;

export async function benchUploads(scale) {
  const work = mkdtempSync(join(tmpdir(), 'khd-bench-'));
  const rows = [];
  const servers = [];
  const closers = [];
  try {
    const tree = join(work, 'tree');
    makeTree(tree, scale.tree);
    const bytes = treeBytes(tree);
    const files = scale.tree.textFiles + scale.tree.binaries + 1;
    const sink = await storingServer(join(work, 'baseline.tar'));
    const sinkProxy = await countingProxy(sink.port);
    closers.push(sink.close, sinkProxy.close);
    const r = { base: [], baseSent: [], first: [], firstSent: [], started: [], again: [], againSent: [], bare: [], cold: [], coldSent: [], one: [], oneSent: [] };
    const baseline = async () => {
      const { seconds } = await run('bash', ['-c', `tar cf - -C "${tree}" . | curl -sf -T - http://127.0.0.1:${sinkProxy.port}/upload`]);
      r.base.push(seconds);
      r.baseSent.push(sinkProxy.take());
    };
    let last;
    for (let i = 0; i < scale.uploadPairs; i++) {
      // A fresh server (nothing of this tree stored) and a cold hash cache, each pair.
      const server = await startBenchServer(join(work, `server${i}`));
      servers.push(server);
      const proxy = await countingProxy(Number(new URL(server.url).port));
      closers.push(proxy.close);
      const env = await loggedIn(`http://127.0.0.1:${proxy.port}`, join(work, `config${i}`));
      proxy.take();
      const khdFirst = async () => {
        const { seconds, total } = await khdRun(env, tree);
        r.first.push(seconds);
        r.started.push(total - seconds);
        r.firstSent.push(proxy.take());
      };
      // Interleaved: which of the two goes first alternates.
      for (const step of i % 2 ? [khdFirst, baseline] : [baseline, khdFirst]) await step();
      r.bare.push(nodeBare());
      const again = await khdRun(env, tree);
      r.again.push(again.seconds);
      r.againSent.push(proxy.take());
      // A fresh clone of a project run before: no hash cache, every content already on the server.
      const coldEnv = await loggedIn(env.KHD_SERVER, join(work, `cold${i}`));
      proxy.take();
      r.cold.push((await khdRun(coldEnv, tree)).seconds);
      r.coldSent.push(proxy.take());
      writeFileSync(join(tree, 'weights', 'changed.bin'), randomBytes(1024 * 1024));
      r.one.push((await khdRun(env, tree)).seconds);
      r.oneSent.push(proxy.take());
      rmSync(join(tree, 'weights', 'changed.bin'));
      last = { server, env };
    }
    const ratio = (a, b) => median(a) / median(b);
    const pct = (sent) => `${(median(sent) / 1e3).toFixed(1)} KB sent, ${((median(sent) / bytes) * 100).toFixed(3)} % of the tree`;
    rows.push({
      name: `first upload (${files} files, ${(bytes / 1e6).toFixed(0)} MB), ${scale.uploadPairs} interleaved pairs`,
      khd: `${secs(r.first)}, ${(median(r.firstSent) / 1e6).toFixed(1)} MB sent`,
      baseline: `${secs(r.base)}, ${(median(r.baseSent) / 1e6).toFixed(1)} MB sent (tar | curl)`,
      ratio: ratio(r.first, r.base),
      target: '≤ 1.7×',
    });
    rows.push({ name: 're-run, nothing changed', khd: `${ms(r.again)}, ${pct(r.againSent)}`, baseline: `node -e 0: ${ms(r.bare)}`, ratio: ratio(r.again, r.bare), target: '≤ 5×, < 1 % bytes' });
    rows.push({ name: 're-run from a fresh clone (cold hash cache, contents on the server)', khd: `${secs(r.cold)}, ${pct(r.coldSent)}`, baseline: `first upload ${median(r.first).toFixed(2)} s`, ratio: median(r.coldSent) / bytes, target: '< 5 % bytes' });
    rows.push({ name: `session start after the upload${last.server.sandboxed ? '' : ' (no sandbox)'}`, khd: ms(r.started), baseline: '1 s', ratio: median(r.started), target: '< 1 s' });
    rows.push({ name: 're-run, one 1 MB file changed', khd: `${secs(r.one)}, ${(median(r.oneSent) / 1e6).toFixed(2)} MB sent`, baseline: '1.00 MB changed', ratio: median(r.oneSent) / (1024 * 1024), target: '≈ 1 MB' });

    // khd ps against a server with a few sessions, interleaved with node -e 0.
    const ps = [];
    const bare = [];
    for (let i = 0; i < scale.runs; i++) {
      bare.push(nodeBare());
      ps.push((await run(process.execPath, [KHD, 'ps', '-a'], { env: last.env })).seconds);
    }
    rows.push({ name: `khd ps -a (${scale.uploadPairs * 4} sessions listed), ${scale.runs} runs`, khd: ms(ps), baseline: `node -e 0: ${ms(bare)}`, ratio: ratio(ps, bare), target: '≤ 2×' });

    // Another user's API calls while a first upload runs, against the same calls with none.
    const server = await startBenchServer(join(work, 'latency'));
    servers.push(server);
    const adminEnv = await loggedIn(server.url, join(work, 'latency-admin'));
    await run(process.execPath, [KHD, 'user', 'add', 'other', '--password-stdin'], { env: adminEnv, input: 'other-password-123' });
    const otherEnv = await loggedIn(server.url, join(work, 'latency-other'), 'other', 'other-password-123');
    const token = JSON.parse(readFileSync(join(otherEnv.KHD_CONFIG_DIR, 'credentials.json'), 'utf8'))[server.url];
    let uploadSeconds = 0;
    const busy = await apiLatencies(server.url, token, async () => (uploadSeconds = (await khdRun(adminEnv, tree)).seconds));
    const idle = await apiLatencies(server.url, token, () => new Promise((resolve) => setTimeout(resolve, uploadSeconds * 1000)));
    const p = (xs) => `p50 ${percentile(xs, 50).toFixed(1)} ms, p99 ${percentile(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (${xs.length} calls)`;
    rows.push({ name: "another user's GET /sessions during a first upload", khd: p(busy), baseline: `no upload: ${p(idle)}`, ratio: percentile(busy, 99) / percentile(idle, 99), target: 'p99 ≤ 50 ms' });

    const big = join(work, 'big');
    makeTree(big, scale.bigTree);
    const bigBytes = treeBytes(big);
    const { rssKb } = await khdRun(adminEnv, big);
    rows.push({ name: `peak memory sending ${(bigBytes / 1e9).toFixed(2)} GB`, khd: `${(rssKb / 1024).toFixed(0)} MB RSS`, baseline: `${(bigBytes / 1e6).toFixed(0)} MB tree`, ratio: (rssKb * 1024) / bigBytes, target: 'bounded' });
  } finally {
    for (const c of closers) c();
    for (const s of servers) s.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

// Run alone: node bench/uploads.mjs [small|full]
if (import.meta.url === `file://${process.argv[1]}`) {
  const { SCALES } = await import('./scales.mjs');
  for (const row of await benchUploads(SCALES[process.argv[2] ?? 'full'])) console.log(`${row.name}\n  khd ${row.khd}\n  baseline ${row.baseline}\n  ratio ${row.ratio.toFixed(3)}  target ${row.target}`);
}
