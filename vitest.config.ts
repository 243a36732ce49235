import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Integration and end-to-end tests start real servers and Python sessions: give them time,
    // and keep to the machine's two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits for a real server, session or browser: 10 s, not the default 1 s, so a
    // slower CI machine waits longer instead of failing.
    expect: { poll: { timeout: 10_000 } },
    maxWorkers: 2,
  },
});
