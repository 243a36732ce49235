import { formatScore } from '../../../protocol/format.js';
import type { SubmitInfo } from '../../../protocol/types.js';
import type { Context } from '../../context.js';
import { CliError, UsageError } from '../../errors.js';
import { sessionArg } from '../../session-arg.js';
import { followLog } from '../logs/logs.js';
import type { SubmitOptions } from './submit.js';

export const SUBMIT_POLL_MS = 500;

/** Prints each stage once, as the server reports it, then `Score: X` and `Done`. */
export async function runSubmit(session: string, checkpoint: string, opts: SubmitOptions, ctx: Context): Promise<void> {
  sessionArg(session);
  if (!checkpoint.trim()) throw new UsageError(`give the checkpoint to submit, e.g. best (khd model ls ${session} lists them)`);
  const api = await ctx.api();
  const started = ctx.clock();
  const { whileAway, transient } = await import('../../api/failures.js');
  let submit = await whileAway(ctx, 'submitting', () => api.calls.submit({ session, checkpoint, test: opts.test ?? false }));
  ctx.io.err(`${opts.test ? 'Test submit' : 'Submit'} of ${submit.source} ${submit.checkpoint} to ${submit.dataset}${opts.test ? ' (public sample; does not count)' : ''}\n`);
  const stop = ctx.onInterrupt(() => {
    ctx.io.err(`\nstopped watching; the submit goes on (khd dataset submits ${submit.dataset})\n`);
  });
  // A test submit shows the session's own output as it runs; a real one never does.
  const output = opts.test && submit.session ? followLog(ctx, sessionArg(submit.session), { follow: true }, true).catch(() => undefined) : undefined;
  const shown = new Set<string>();
  const { paintOf } = await import('../../render/colors.js');
  const paint = paintOf(ctx.io.colorErr);
  const say = (key: string, text: string) => {
    if (shown.has(key)) return;
    shown.add(key);
    // A stage done in green, one under way dimmed.
    ctx.io.err(`${text.replace(/^✓/gm, paint.green('✓')).replace(/^…/gm, paint.dim('…'))}\n`);
  };
  try {
    for (;;) {
      if (submit.stage !== 'queued') say('started', `✓ session ${submit.session} is running`);
      else say('queued', `… session ${submit.session} is queued`);
      if (submit.loadSeconds !== null) say('loaded', `✓ model loaded in ${submit.loadSeconds.toFixed(1)} s\n… inferring`);
      if (submit.stage === 'scoring' || submit.inferSeconds !== null) say('scoring', `✓ inferred in ${(submit.inferSeconds ?? 0).toFixed(1)} s\n… scoring`);
      if (submit.status !== 'evaluating') break;
      await ctx.sleep(SUBMIT_POLL_MS);
      // The submit goes on while the server restarts: its stages are followed again by its id.
      const id = submit.id;
      submit = await whileAway(ctx, `following submit ${id}`, () => api.calls.getSubmit(id), transient);
    }
    await output;
  } finally {
    stop();
  }
  finishSubmit(ctx, submit, ctx.clock() - started);
}

function finishSubmit(ctx: Context, submit: SubmitInfo, elapsedMs: number): void {
  if (submit.status === 'failed') {
    throw new CliError(`the submit failed: ${submit.error}${submit.test ? '' : ' (it does not count)'}`);
  }
  if (submit.status === 'unscored') {
    ctx.io.err(`${submit.note}\nFirst predictions:\n${(submit.preview ?? []).map((line) => `  ${line}\n`).join('')}`);
  } else {
    ctx.io.out(`Score: ${formatScore(submit.score!)}\n`);
  }
  ctx.io.err(`Done in ${(elapsedMs / 1000).toFixed(1)} s${submit.test ? ' (test submit: not on the leaderboard)' : ''}\n`);
}
