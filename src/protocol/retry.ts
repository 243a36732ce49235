/**
 * Waiting out what will pass: the one back-off and retry loop of the CLI (uploads, calls while
 * the server restarts, submits' stages) and of both log followers (CLI and dashboard).
 */

/** The pause before the `attempt`-th retry in a row (1-based): doubling from `baseMs`, at most `maxMs`. */
export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** (attempt - 1));
}

export interface RetryOptions {
  /** Retries after the first try: `retries: 5` tries at most 6 times. */
  retries: number;
  baseMs: number;
  maxMs: number;
  sleep: (ms: number) => Promise<void>;
  /** Whether this failure may pass (a server restarting, a connection refused). */
  retryable: (err: unknown) => boolean;
  /** A pause the failure asks for itself (Retry-After), used instead of the back-off when longer. */
  asksFor?: (err: unknown) => number | undefined;
  /** Told before each pause, so the user knows why nothing moves. */
  onRetry?: (attempt: number, delayMs: number, err: unknown) => void;
}

/** Calls `fn` until it succeeds, a failure is not retryable, or the retries are spent. */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt > o.retries || !o.retryable(err)) throw err;
      const delay = Math.max(backoff(attempt, o.baseMs, o.maxMs), Math.min(o.asksFor?.(err) ?? 0, 60_000));
      o.onRetry?.(attempt, delay, err);
      await o.sleep(delay);
    }
  }
}
