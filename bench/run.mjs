// `npm run bench`: prints each figure with its baseline and ratio. BENCH_RUNS lowers the count
// for a CI smoke run; the figures go into docs/performance.md by hand, never into assertions.
import { benchStartup } from './startup.mjs';

const runs = Number(process.env.BENCH_RUNS ?? 30);
const rows = benchStartup(runs);
console.log(`start-up (median of ${runs} runs)`);
for (const r of rows) console.log(`  ${r.name.padEnd(16)} ${r.ms.toFixed(1).padStart(7)} ms  ${r.ratio.toFixed(2)}×`);
