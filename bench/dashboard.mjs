// Dashboard benches: what the browser downloads for the first page, and how long Chromium takes
// to draw it and a finished session's page (1,000 log lines, 2 charts of 1,000 points each).
// Skipped, saying so, where Chromium is not installed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_PASSWORD, KHD, startBenchServer } from './server.mjs';

const CHROMIUM = process.env.KHD_CHROMIUM ?? '/usr/bin/chromium';

const TRAIN_PY = `
import nsml
for i in range(1, 1001):
    print('step', i, 'loss', 1.0 / i)
    nsml.report(step=i, train__loss=1.0 / i, train__acc=i / 1000.0, val__loss=2.0 / i)
`;

/** Bytes the browser transfers for `/` and what it loads, compressed as Chromium asks for them. */
async function firstPageBytes(url) {
  // fetch inflates what it reads: the length on the wire is the header's.
  const wire = async (path) => Number((await fetch(`${url}${path}`, { headers: { 'accept-encoding': 'br, gzip' } })).headers.get('content-length'));
  const page = await fetch(`${url}/`).then((r) => r.text());
  let total = await wire('/');
  for (const [, path] of page.matchAll(/(?:src|href)="(\/[^"]+)"/g)) total += await wire(path);
  return total;
}

export async function benchDashboard(runs) {
  if (!existsSync(CHROMIUM)) return [{ name: 'dashboard', khd: `skipped: no Chromium at ${CHROMIUM}`, baseline: '', ratio: 0, target: '' }];
  const { chromium } = await import('playwright-core');
  const work = mkdtempSync(join(tmpdir(), 'khd-bench-web-'));
  const server = await startBenchServer(work);
  const { url } = server;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const rows = [];
  try {
    const env = { ...process.env, KHD_SERVER: url, KHD_CONFIG_DIR: join(work, 'config'), KHD_NO_KEYRING: '1' };
    spawnSync(process.execPath, [KHD, 'login', '-u', 'admin', '--password-stdin'], { env, input: BENCH_PASSWORD });
    const project = join(work, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'main.py'), TRAIN_PY);
    const run = spawnSync(process.execPath, [KHD, 'run', '-i'], { env, cwd: project, encoding: 'utf8' });
    const session = /Session (\S+) is started/.exec(run.stdout)?.[1];
    if (!session) throw new Error(`khd run failed: ${run.stderr}`);

    const bytes = await firstPageBytes(url);
    rows.push({ name: 'dashboard: first page, transferred', khd: `${(bytes / 1024).toFixed(1)} KB (brotli)`, baseline: '100 KB', ratio: bytes / (100 * 1024), target: '< 100 KB' });

    const loginMs = [];
    const sessionMs = [];
    for (let i = 0; i < runs; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      let start = performance.now();
      await page.goto(url);
      await page.getByRole('button', { name: 'Log in' }).waitFor();
      loginMs.push(performance.now() - start);
      await page.getByLabel('User').fill('admin');
      await page.getByLabel('Password').fill(BENCH_PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Sessions' }).waitFor();
      start = performance.now();
      await page.goto(`${url}/#/sessions/${session}`);
      await page.locator('#log .line').nth(999).waitFor();
      await page.locator('figure.chart[data-points="1000"]').nth(1).waitFor();
      sessionMs.push(performance.now() - start);
      await context.close();
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    rows.push({ name: 'dashboard: login page drawn', khd: `${median(loginMs).toFixed(0)} ms (median of ${runs})`, baseline: '1 s', ratio: median(loginMs) / 1000, target: '< 1 s' });
    rows.push({ name: 'dashboard: session page, 1,000 lines, 2 charts', khd: `${median(sessionMs).toFixed(0)} ms (median of ${runs})`, baseline: '1 s', ratio: median(sessionMs) / 1000, target: '< 1 s' });
  } finally {
    await browser.close();
    server.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}
