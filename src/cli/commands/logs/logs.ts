import { Command } from 'commander';
import type { SessionName } from '../../../protocol/session-name.js';
import type { LogEnd, LogRecord } from '../../../protocol/types.js';
import type { Context } from '../../context.js';
import { sessionArg } from '../../session-arg.js';
import { parseWhole, examples } from '../../options.js';

export interface LogsOptions {
  follow?: boolean;
  tail?: number;
  timestamps?: boolean;
  json?: boolean;
}

export function newLogsCommand(ctx: Context): Command {
  return new Command('logs')
    .description("print a session's log; -f follows it until the session ends")
    .argument('<session>', 'USER/DATASET/N')
    .option('-f, --follow', 'keep printing new lines until the session ends (reconnects by itself)')
    .option('--tail <n>', 'start with the last N lines', parseWhole(0))
    .option('--timestamps', 'prefix each line with its time')
    .option('--json', 'print one JSON record per line')
    .addHelpText('after', examples(["khd logs kim/breast_cancer/3 -f", "follow it to its end"], ["khd logs kim/breast_cancer/3 --tail 20 --timestamps"]))
    .action((session: string, opts: LogsOptions) => runLogs(session, opts, ctx));
}

/** Writes one record: stdout lines to stdout, stderr lines to stderr, as the session wrote them. */
export function printRecord(ctx: Context, record: LogRecord, opts: LogsOptions): void {
  if (opts.json) return ctx.io.out(`${JSON.stringify(record)}\n`);
  const text = `${opts.timestamps ? `${record.ts} ` : ''}${record.line}\n`;
  if (record.stream === 'stderr') ctx.io.err(text);
  else ctx.io.out(text);
}

/**
 * Streams the log (following or not). Ctrl-C while following says the session keeps running,
 * unless the caller says what Ctrl-C means itself (`saysOnInterrupt`: a submit's own line).
 */
export async function followLog(ctx: Context, name: SessionName, opts: LogsOptions, saysOnInterrupt = false): Promise<LogEnd | undefined> {
  const api = await ctx.api();
  const { streamLog } = await import('../../api/log-stream.js');
  const controller = new AbortController();
  const unregister = opts.follow
    ? ctx.onInterrupt(() => {
        if (!saysOnInterrupt) ctx.io.err('\nstopped following; the session keeps running (khd stop stops it)\n');
        controller.abort();
      })
    : () => {};
  try {
    return await streamLog(api.client, {
      name,
      follow: opts.follow ?? false,
      tail: opts.tail,
      onRecord: (record) => printRecord(ctx, record, opts),
      drained: () => ctx.io.drained(),
      onReconnect: (attempt, delay, reason) =>
        ctx.io.err(`connection lost (${reason}); reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${attempt})\n`),
      sleep: ctx.sleep,
      signal: controller.signal,
    });
  } finally {
    unregister();
  }
}

export async function runLogs(session: string, opts: LogsOptions, ctx: Context): Promise<void> {
  const end = await followLog(ctx, sessionArg(session), opts);
  if (end && opts.follow && !opts.json) {
    const how = end.status === 'Exited' ? `exited with code ${end.exitCode}` : end.status.toLowerCase();
    ctx.io.err(`session ${session} ${how}${end.reason ? `: ${end.reason}` : ''}\n`);
  }
}
