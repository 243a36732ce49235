import { defineConfig } from 'vitest/config';

/** The executors' own tests run real Python in real sandboxes (and Slurm jobs): with the integration tests. */
const EXECUTOR_RUNS = 'src/server/executor/{local,slurm}-executor.test.ts';

export default defineConfig({
  test: {
    // Integration and end-to-end tests start real servers and Python sessions: give them time,
    // and keep to the machine's two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits for a real server, session or browser: 10 s, not the default 1 s, so a
    // slower CI machine waits longer instead of failing.
    expect: { poll: { timeout: 10_000 } },
    maxWorkers: 2,
    // One run of all of them is `npm test`; `npm run test:unit` is the fast loop (no server).
    projects: [
      { extends: true, test: { name: 'unit', include: ['src/**/*.test.ts'], exclude: [EXECUTOR_RUNS] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts', EXECUTOR_RUNS] } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'] } },
      { extends: true, test: { name: 'browser', include: ['test/browser/**/*.test.ts'] } },
    ],
  },
});
