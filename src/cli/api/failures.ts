// Which failures may pass, by the errors' names alone: the client module is not loaded to ask.
/** The server was not there, or said so (502/503/504): nothing was done, and it may be back soon. */
export function serverAway(err: unknown): boolean {
  const e = err as Error & { status?: number; reason?: string };
  // Refused: the request never reached a server, so repeating it cannot do a thing twice.
  if (e.name === 'ConnectionError') return e.reason === 'ECONNREFUSED';
  return e.name === 'ApiError' && (e.status === 502 || e.status === 503 || e.status === 504);
}

/** Any failure of the network or the server: for requests that may be repeated (reads). */
export function transient(err: unknown): boolean {
  const e = err as Error & { status?: number };
  return e.name === 'ConnectionError' || (e.name === 'ApiError' && (e.status ?? 0) >= 500);
}

/** How long a command waits for a server that is restarting: about a minute in all. */
export const AWAY_RETRIES = 12;
const AWAY_BASE_MS = 500;
const AWAY_MAX_MS = 5_000;

/**
 * Runs `call` again while the server is away (restarting, shutting down: 503, a refused
 * connection), saying so on stderr; `retryable` widens that for calls safe to repeat (reads).
 */
export async function whileAway<T>(
  ctx: { io: { err(text: string): void }; sleep(ms: number): Promise<void> },
  what: string,
  call: () => Promise<T>,
  retryable: (err: unknown) => boolean = serverAway,
): Promise<T> {
  const { withRetries } = await import('../../protocol/retry.js');
  return withRetries(call, {
    retries: AWAY_RETRIES, baseMs: AWAY_BASE_MS, maxMs: AWAY_MAX_MS, sleep: ctx.sleep, retryable,
    asksFor: (err) => (err as { retryAfterMs?: number }).retryAfterMs,
    onRetry: (attempt, delay, err) =>
      ctx.io.err(`${what}: ${(err as Error).message}; trying again in ${(delay / 1000).toFixed(1)} s (attempt ${attempt} of ${AWAY_RETRIES})\n`),
  });
}
