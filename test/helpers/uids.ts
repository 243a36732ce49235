import { formatUidRange, type UidRange } from '../../src/protocol/uid-range.js';

let servers = 0;

/**
 * Session uids of a test server's own: test files run in parallel workers, each starting
 * servers, and two servers must never share a uid (see UidPool). Ten ranges of 100 per worker,
 * from 72000; the executor's own tests use 71000-71999.
 */
export function testSessionUids(): UidRange {
  const worker = Number(process.env.VITEST_POOL_ID ?? 0);
  return { first: 72000 + (worker * 10 + (servers++ % 10)) * 100, count: 100 };
}

/** The same, as `khd server` takes it. */
export function testSessionUidsFlag(): string[] {
  return ['--session-uids', formatUidRange(testSessionUids())];
}
