import picomatch from 'picomatch';
import type { SessionInfo } from '../../../protocol/types.js';
import { sessionArg } from '../../session-arg.js';

export const isGlob = (pattern: string): boolean => picomatch.scan(pattern).isGlob;

/** Expands the patterns against the user's sessions; a plain name is taken as it is. */
export function expandPatterns(patterns: string[], sessions: SessionInfo[]): { names: string[]; unmatched: string[] } {
  const names = new Set<string>();
  const unmatched: string[] = [];
  for (const pattern of patterns) {
    if (!isGlob(pattern)) {
      sessionArg(pattern);
      names.add(pattern);
      continue;
    }
    const match = picomatch(pattern, { dot: true });
    const hits = sessions.filter((s) => match(s.name));
    if (hits.length === 0) unmatched.push(pattern);
    hits.forEach((s) => names.add(s.name));
  }
  return { names: [...names], unmatched };
}

