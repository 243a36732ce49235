import { formatUidRange, type UidRange } from '../../src/protocol/uid-range.js';

let servers = 0;

/**
 * The band of session uids this test run may use: 5,000 from 71000, one band per slot. A slot
 * (KHD_TEST_UID_SLOT, 0–3) is what scripts/test.sh takes for its run, so two `npm test` beside
 * each other never hand one uid to two sessions.
 */
function band(): number {
  const slot = Number(process.env.KHD_TEST_UID_SLOT ?? 0);
  return 71000 + (Number.isInteger(slot) && slot >= 0 && slot < 4 ? slot : 0) * 5000;
}

/** Uids for the executor's own tests: `offset` (0–999) into the run's band. */
export function executorUids(offset: number, count: number): UidRange {
  return { first: band() + offset, count };
}

/**
 * Session uids of a test server's own: test files run in parallel workers, each starting
 * servers, and two servers must never share a uid (see UidPool). Ten ranges of 100 per worker,
 * after the executor's first 1,000 of the band.
 */
export function testSessionUids(): UidRange {
  const worker = Number(process.env.VITEST_POOL_ID ?? 0) % 4;
  return { first: band() + 1000 + (worker * 10 + (servers++ % 10)) * 100, count: 100 };
}

/** The same, as `khd server` takes it. */
export function testSessionUidsFlag(): string[] {
  return ['--session-uids', formatUidRange(testSessionUids())];
}
