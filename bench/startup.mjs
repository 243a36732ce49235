// Start-up time of the built CLI against a bare `node -e 0`, on the same machine in one run.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const KHD = fileURLToPath(new URL('../bin/khd.js', import.meta.url));

function timeCommand(args, runs) {
  const times = [];
  for (let i = 0; i < runs + 3; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
    if (i >= 3) times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export function benchStartup(runs = 30) {
  const base = timeCommand(['-e', '0'], runs);
  return [
    { name: 'node -e 0', ms: base, ratio: 1 },
    ...[['--version'], ['--help']].map((args) => {
      const ms = timeCommand([KHD, ...args], runs);
      return { name: `khd ${args.join(' ')}`, ms, ratio: ms / base };
    }),
  ];
}
