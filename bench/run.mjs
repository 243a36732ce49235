// `npm run bench`: each figure beside its baseline, measured in the same run on this machine.
// BENCH_SCALE=small runs everything on small trees (the CI smoke test); figures for
// docs/performance.md come from the full size. Nothing here is asserted.
import { benchDashboard } from './dashboard.mjs';
import { benchHostile } from './hostile.mjs';
import { benchLogs } from './logs.mjs';
import { benchEnvironments } from './environments.mjs';
import { benchSlurm } from './slurm.mjs';
import { benchStartup } from './startup.mjs';
import { benchUploads } from './uploads.mjs';

const MB = 1024 * 1024;
const SCALES = {
  full: {
    runs: 30,
    pageRuns: 7,
    diskLimitMb: 2048,
    tree: { textFiles: 4990, textBytes: 50 * MB, binaries: 10, binaryBytes: 15 * MB },
    // 1.0 GB (decimal): just under the default 1 GiB session limit.
    bigTree: { textFiles: 10, textBytes: MB, binaries: 8, binaryBytes: 119 * MB },
    followers: 100,
    lineRate: 1000,
    fanOutSeconds: 10,
    logLines: 1_000_000,
  },
  small: {
    runs: 3,
    pageRuns: 1,
    diskLimitMb: 128,
    tree: { textFiles: 200, textBytes: 2 * MB, binaries: 2, binaryBytes: 2 * MB },
    bigTree: { textFiles: 10, textBytes: MB, binaries: 2, binaryBytes: 8 * MB },
    followers: 5,
    lineRate: 200,
    fanOutSeconds: 1,
    logLines: 5000,
  },
};

const scale = SCALES[process.env.BENCH_SCALE ?? 'full'];
if (!scale) throw new Error(`BENCH_SCALE must be one of ${Object.keys(SCALES).join(', ')}`);

const rows = [];
for (const r of benchStartup(scale.runs)) {
  rows.push({ name: r.name, khd: `${r.ms.toFixed(1)} ms`, baseline: r.name === 'node -e 0' ? '' : 'node -e 0', ratio: r.ratio, target: r.name === 'node -e 0' ? '' : '≤ 1.5×' });
}
rows.push(...(await benchUploads(scale)));
rows.push(...(await benchDashboard(scale.pageRuns)));
rows.push(...(await benchHostile(scale)));
rows.push(...(await benchLogs(scale)));
rows.push(...(await benchEnvironments(Math.max(3, Math.floor(scale.runs / 3)))));
rows.push(...(await benchSlurm(Math.max(3, Math.floor(scale.runs / 3)))));

const cols = ['name', 'khd', 'baseline', 'ratio', 'target'];
const cell = (r, c) => (c === 'ratio' ? `${r.ratio.toFixed(3)}×` : String(r[c]));
const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r, c).length)));
console.log(cols.map((c, i) => c.padEnd(widths[i])).join('  '));
for (const r of rows) console.log(cols.map((c, i) => cell(r, c).padEnd(widths[i])).join('  '));
