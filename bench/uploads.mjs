// Upload benches: khd against `tar cf - DIR | curl -T - URL` on the same tree, in one run.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_PASSWORD, KHD, run, startBenchServer } from './server.mjs';
import { makeTree } from './tree.mjs';


/** A TCP proxy in front of the khd server that counts the bytes the client sends. */
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
 * the baseline does; `total` adds starting the session.
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

export async function benchUploads(scale) {
  const work = mkdtempSync(join(tmpdir(), 'khd-bench-'));
  const server = await startBenchServer(work);
  const proxy = await countingProxy(Number(new URL(server.url).port));
  const env = { ...process.env, KHD_SERVER: `http://127.0.0.1:${proxy.port}`, KHD_CONFIG_DIR: join(work, 'config'), KHD_NO_KEYRING: '1' };
  await run(process.execPath, [KHD, 'login', '-u', 'admin', '--password-stdin'], { env, input: BENCH_PASSWORD });
  const rows = [];
  try {
    const tree = join(work, 'tree');
    makeTree(tree, scale.tree);
    const bytes = treeBytes(tree);
    const sink = await storingServer(join(work, 'baseline.tar'));
    const { seconds: baseline } = await run('bash', ['-c', `tar cf - -C "${tree}" . | curl -sf -T - http://127.0.0.1:${sink.port}/upload`]);
    sink.close();
    proxy.take();
    const { seconds: first, total: firstTotal } = await khdRun(env, tree);
    const firstSent = proxy.take();
    rows.push({ name: `first upload (${scale.tree.textFiles + scale.tree.binaries + 1} files, ${(bytes / 1e6).toFixed(0)} MB)`, khd: `${first.toFixed(2)} s, ${(firstSent / 1e6).toFixed(1)} MB sent (${firstTotal.toFixed(2)} s with the session)`, baseline: `${baseline.toFixed(2)} s (tar | curl)`, ratio: first / baseline, target: '≤ 1.5×' });
    const { seconds: again, total: againTotal } = await khdRun(env, tree);
    const againSent = proxy.take();
    rows.push({ name: 're-run, nothing changed', khd: `${again.toFixed(2)} s, ${(againSent / 1e3).toFixed(1)} KB sent (${againTotal.toFixed(2)} s with the session)`, baseline: `${((againSent / bytes) * 100).toFixed(3)}% of the tree`, ratio: again / first, target: '< 1% bytes, < 10% time' });
    rows.push({ name: `session start after the upload${server.sandboxed ? '' : ' (no sandbox)'}`, khd: `${((againTotal - again) * 1000).toFixed(0)} ms (first run: ${((firstTotal - first) * 1000).toFixed(0)} ms)`, baseline: '1 s', ratio: againTotal - again, target: '< 1 s' });
    writeFileSync(join(tree, 'weights', 'changed.bin'), randomBytes(1024 * 1024));
    await khdRun(env, tree);
    proxy.take();
    writeFileSync(join(tree, 'weights', 'changed.bin'), randomBytes(1024 * 1024));
    const { seconds: one } = await khdRun(env, tree);
    const oneSent = proxy.take();
    rows.push({ name: 're-run, one 1 MB file changed', khd: `${one.toFixed(2)} s, ${(oneSent / 1e6).toFixed(2)} MB sent`, baseline: '1.00 MB changed', ratio: oneSent / (1024 * 1024), target: '≈ 1 MB' });

    const big = join(work, 'big');
    makeTree(big, scale.bigTree);
    const bigBytes = treeBytes(big);
    const { rssKb } = await khdRun(env, big);
    proxy.take();
    rows.push({ name: `peak memory sending ${(bigBytes / 1e9).toFixed(2)} GB`, khd: `${(rssKb / 1024).toFixed(0)} MB RSS`, baseline: `${(bigBytes / 1e6).toFixed(0)} MB tree`, ratio: (rssKb * 1024) / bigBytes, target: 'bounded' });
  } finally {
    proxy.close();
    server.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}
