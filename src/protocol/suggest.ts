import { distance } from 'fastest-levenshtein';

/**
 * The candidate closest to a mistyped name, if it is close enough to be what was meant (at most
 * `maxEdits` characters different; by default a third of the name's, and at least two), else
 * undefined.
 */
export function closestName(typed: string, candidates: Iterable<string>, maxEdits?: number): string | undefined {
  const allowed = maxEdits ?? Math.max(2, Math.floor(typed.length / 3));
  let best: { name: string; d: number } | undefined;
  for (const name of candidates) {
    if (name === typed) continue;
    const d = distance(typed.toLowerCase(), name.toLowerCase());
    if (d <= allowed && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

/** `: did you mean X?`, for a message about something that does not exist; '' where nothing is close. */
export function didYouMean(typed: string, candidates: Iterable<string>, maxEdits?: number): string {
  const close = closestName(typed, candidates, maxEdits);
  return close === undefined ? '' : `: did you mean ${close}?`;
}
