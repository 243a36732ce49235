// Logs under load: many followers of one session printing at a steady rate (lines lost or
// doubled, print-to-follower latency, the server's CPU and memory), how fast one follower reads
// a long log, and a tail of a long log while others use the server. Each beside its baseline.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_PASSWORD, KHD, percentile, projectWith, run, startBenchServer } from './server.mjs';


async function loggedIn(server, dir) {
  const env = { ...process.env, KHD_SERVER: server.url, KHD_CONFIG_DIR: join(dir, 'config'), KHD_NO_KEYRING: '1' };
  await run(process.execPath, [KHD, 'login', '-u', 'admin', '--password-stdin'], { env, input: BENCH_PASSWORD });
  const token = JSON.parse(readFileSync(join(dir, 'config', 'credentials.json'), 'utf8'))[server.url];
  return { env, token };
}


/** CPU seconds (user + system) of a process, from /proc. */
function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

/** The most resident memory of a process while `work` runs, sampled every 50 ms. */
async function peakRss(pid, work) {
  let peak = 0;
  const sample = () => (peak = Math.max(peak, Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024));
  const timer = setInterval(sample, 50);
  try {
    sample();
    const result = await work();
    sample();
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Follows a session's log over SSE until its end event; resolves with each line's latency
 * (receive time minus the print time the line carries) and the ids seen.
 */
async function follow(url, token, name) {
  const res = await fetch(`${url}/api/v1/sessions/${name}/logs?follow=1`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
  const decoder = new TextDecoder();
  const latencies = [];
  const ids = [];
  let buffer = '';
  for await (const chunk of res.body) {
    const now = Date.now();
    buffer += decoder.decode(chunk, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) !== -1) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (event.startsWith('event: end')) return { latencies, ids };
      const data = /^data: (.*)$/m.exec(event)?.[1];
      if (!data) continue;
      const record = JSON.parse(data);
      ids.push(record.id);
      const printed = Number(/^at (\d+\.\d+)/.exec(record.line)?.[1]);
      // Both clocks read to the millisecond: a line received in the millisecond it was printed counts 0.
      if (printed) latencies.push(Math.max(0, now - printed));
    }
  }
  return { latencies, ids };
}

/** Lines printed at `rate` a second for `seconds`, each carrying its print time in ms. */
const STEADY_PY = (rate, seconds) => `
import time
time.sleep(1)  # the followers connect first
start = time.time()
for i in range(${rate * seconds}):
    wait = start + i / ${rate} - time.time()
    if wait > 0:
        time.sleep(wait)
    print('at %.3f line %d' % (time.time() * 1000, i), flush=True)
`;

async function fanOut(work, followers, rate, seconds) {
  const server = await startBenchServer(join(work, 'fanout'));
  try {
    const { env, token } = await loggedIn(server, join(work, 'fanout'));
    const measure = async (n) => {
      const started = await run(process.execPath, [KHD, 'run'], { env, cwd: projectWith(join(work, `steady-${n}`), STEADY_PY(rate, seconds)) });
      const name = /Session (\S+) is started/.exec(started.stdout)[1];
      const before = cpuOf(server.pid);
      const t0 = Date.now();
      const { result: results, peak } = await peakRss(server.pid, () => Promise.all(Array.from({ length: n }, () => follow(server.url, token, name))));
      const after = cpuOf(server.pid);
      const latencies = results.flatMap((r) => r.latencies);
      const expected = rate * seconds;
      let lost = 0;
      let doubled = 0;
      for (const r of results) {
        const unique = new Set(r.ids);
        lost += expected - unique.size;
        doubled += r.ids.length - unique.size;
      }
      return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), lost, doubled, cpu: (after - before) / ((Date.now() - t0) / 1000), rss: peak };
    };
    const one = await measure(1);
    const many = await measure(followers);
    return [
      {
        name: `log fan-out: ${followers} followers × ${rate.toLocaleString('en')} lines/s, print to follower`,
        khd: `p50 ${many.p50.toFixed(1)} ms, p99 ${many.p99.toFixed(1)} ms; lost ${many.lost}, twice ${many.doubled}`,
        baseline: `1 follower: p50 ${one.p50.toFixed(1)} ms, p99 ${one.p99.toFixed(1)} ms`,
        ratio: many.p99 / Math.max(1, one.p99),
        target: 'none lost or twice; p99 < 1 s',
      },
      {
        name: 'log fan-out: server CPU and peak RSS',
        khd: `${(many.cpu * 100).toFixed(0)}% of a core, ${(many.rss / 2 ** 20).toFixed(0)} MB`,
        baseline: `1 follower: ${(one.cpu * 100).toFixed(0)}%, ${(one.rss / 2 ** 20).toFixed(0)} MB`,
        ratio: many.cpu / Math.max(0.01, one.cpu),
        target: 'under a core',
      },
    ];
  } finally {
    server.stop();
  }
}

/** A finished session with a log of `lines` lines (its project beside the server's folder, not in it: a live database changes as it is sent). */
async function longLog(env, work, lines) {
  const started = await run(process.execPath, [KHD, 'run', '-i'], { env, cwd: projectWith(join(work, 'long-project'), `for i in range(${lines}):\n    print('line', i)\n`) });
  return /Session (\S+) is started/.exec(started.stdout)[1];
}

async function readingAndTails(work, lines, runs) {
  const server = await startBenchServer(join(work, 'long'), ['--max-log-size', '1G']);
  try {
    const { env, token } = await loggedIn(server, join(work, 'long'));
    const name = await longLog(env, work, lines);
    const short = /Session (\S+) is started/.exec((await run(process.execPath, [KHD, 'run', '-i'], { env, cwd: projectWith(join(work, 'short'), "print('one')\n") })).stdout)[1];
    // One follower reading the whole log to /dev/null.
    const reads = [];
    for (let i = 0; i < Math.max(1, Math.floor(runs / 10)); i++) reads.push((await run('sh', ['-c', `"${process.execPath}" "${KHD}" logs ${name} > /dev/null`], { env })).seconds);
    const read = percentile(reads, 50);
    // A tail of the long log, against a tail of a one-line log (the same fixed costs).
    const tails = [];
    const shortTails = [];
    for (let i = 0; i < runs; i++) {
      tails.push((await run(process.execPath, [KHD, 'logs', name, '--tail', '1'], { env })).seconds * 1000);
      shortTails.push((await run(process.execPath, [KHD, 'logs', short, '--tail', '1'], { env })).seconds * 1000);
    }
    // /info while ten clients tail the long log over and over, against /info alone.
    const info = async () => {
      const t = performance.now();
      await (await fetch(`${server.url}/api/v1/info`)).text();
      return performance.now() - t;
    };
    const idle = [];
    for (let i = 0; i < runs * 3; i++) idle.push(await info());
    let tailing = true;
    const tailers = Array.from({ length: 10 }, async () => {
      while (tailing) await (await fetch(`${server.url}/api/v1/sessions/${name}/logs?tail=1`, { headers: { authorization: `Bearer ${token}` } })).text();
    });
    const busy = [];
    for (let i = 0; i < runs * 3; i++) busy.push(await info());
    tailing = false;
    await Promise.all(tailers);
    return [
      {
        name: `one follower reads a ${lines.toLocaleString('en')}-line log`,
        khd: `${Math.round(lines / read).toLocaleString('en')} lines/s (${read.toFixed(2)} s)`,
        baseline: '',
        ratio: 1,
        target: '',
      },
      {
        name: `khd logs --tail 1 on a ${lines.toLocaleString('en')}-line log`,
        khd: `${percentile(tails, 50).toFixed(0)} ms`,
        baseline: `${percentile(shortTails, 50).toFixed(0)} ms on a 1-line log`,
        ratio: percentile(tails, 50) / percentile(shortTails, 50),
        target: '≤ 1.2×',
      },
      {
        name: '/info while 10 clients tail that log',
        khd: `p50 ${percentile(busy, 50).toFixed(1)} ms, p99 ${percentile(busy, 99).toFixed(1)} ms`,
        baseline: `alone: p50 ${percentile(idle, 50).toFixed(1)} ms, p99 ${percentile(idle, 99).toFixed(1)} ms`,
        ratio: percentile(busy, 99) / percentile(idle, 99),
        target: 'p99 < 100 ms',
      },
    ];
  } finally {
    server.stop();
  }
}

export async function benchLogs(scale) {
  const work = mkdtempSync(join(tmpdir(), 'khd-bench-logs-'));
  try {
    return [...(await fanOut(work, scale.followers, scale.lineRate, scale.fanOutSeconds)), ...(await readingAndTails(work, scale.logLines, scale.runs))];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
