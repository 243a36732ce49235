import { quote } from 'shell-quote';
import { formatSize } from '../../../protocol/sizes.js';
import type { SessionInfo } from '../../../protocol/types.js';

/** The khd command line that starts a session like `s` again, as NSML's `nsml command` gave it. */
export function commandOf(s: SessionInfo): string {
  if (s.type !== 'normal') {
    const [, source, checkpoint] = /^(?:test )?submit of (\S+) (\S+)$/.exec(s.memo) ?? [];
    return quote(['khd', 'submit', ...(s.type === 'submit(test)' ? ['-t'] : []), source ?? '?', checkpoint ?? '?']);
  }
  const reserved = s.forkOf ? 4 : 0;
  const args = s.args.slice(0, s.args.length - reserved);
  const resources = ['-g', String(s.gpus), '--cpus', String(s.cpus), '--memory', formatSize(s.memory).replace(/ /g, '').replace(/B$/, '')];
  if (s.forkOf) return quote(['khd', 'fork', s.forkOf.session, '-c', s.forkOf.checkpoint, ...(args.length > 0 ? ['-a', quote(args)] : []), ...resources]);
  return quote([
    'khd', 'run', ...(s.dataset ? ['-d', s.dataset] : []), '-e', s.entry, ...(args.length > 0 ? ['-a', quote(args)] : []), ...resources,
    ...(s.env ? ['--env', s.env] : []),
  ]);
}
