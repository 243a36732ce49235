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
import { SCALES } from './scales.mjs';

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
