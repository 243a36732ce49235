import { parseSize } from '../../../protocol/sizes.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { sessionArg } from '../../session-arg.js';
import { announceSession } from '../run/execute-run.js';
import { parseArgsOption } from '../run/run-options.js';
import type { ForkOptions } from './fork.js';

export async function runFork(session: string, opts: ForkOptions, ctx: Context): Promise<void> {
  const name = sessionArg(session);
  const memory = opts.memory === undefined ? undefined : parseSize(opts.memory);
  if (memory === 0 || (opts.memory !== undefined && memory === undefined)) throw new UsageError(`--memory '${opts.memory}' is not a size: use e.g. 24G or 512M`);
  if (opts.checkpoint !== undefined && !opts.checkpoint.trim()) throw new UsageError(`-c needs a checkpoint: khd model ls ${session} lists them`);
  const args = opts.args === undefined ? undefined : parseArgsOption(opts.args);
  const api = await ctx.api();
  const forked = await api.calls.fork(name, { checkpoint: opts.checkpoint ?? null, args: args ?? null, gpus: opts.gpus, cpus: opts.cpus, memory, memo: opts.memo });
  await announceSession(ctx, forked, opts, ` (a fork of ${forked.forkOf!.session} at checkpoint ${forked.forkOf!.checkpoint})`);
}
