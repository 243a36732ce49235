import { createInterface } from 'node:readline';
import { EXIT } from '../../../protocol/errors.js';
import { sessionPath, type SessionName } from '../../../protocol/session-name.js';
import type { Context } from '../../context.js';
import { SilentExit } from '../../errors.js';

/** What `khd exec` exits with when the command ran out of time, as timeout(1) does. */
const TIMED_OUT = 124;

export async function runExec(ctx: Context, name: SessionName, command: string[], timeoutMs: number): Promise<void> {
  const api = await ctx.api();
  const response = await api.client.stream({ method: 'POST', url: `${sessionPath(name)}/exec`, data: { command, timeoutMs }, timeout: 0 });
  let end: { exitCode: number | null; signal: string | null; timedOut: boolean; cut: boolean } | undefined;
  for await (const text of createInterface({ input: response.body, crlfDelay: Infinity })) {
    if (!text) continue;
    const record = JSON.parse(text) as { stream?: 'stdout' | 'stderr'; line?: string } & Partial<NonNullable<typeof end>>;
    if (record.stream) {
      if (record.stream === 'stdout') ctx.io.out(`${record.line}\n`);
      else ctx.io.err(`${record.line}\n`);
      await ctx.io.drained();
    } else end = record as NonNullable<typeof end>;
  }
  if (!end) {
    ctx.io.err('khd: the connection ended before the command did; it was stopped\n');
    throw new SilentExit(EXIT.failure);
  }
  if (end.cut) ctx.io.err('khd: the command printed more than 100,000 lines; the rest was dropped\n');
  if (end.timedOut) {
    ctx.io.err(`khd: stopped after ${timeoutMs / 1000} s (--timeout)\n`);
    throw new SilentExit(TIMED_OUT);
  }
  const code = end.exitCode ?? 128 + 9;
  if (code !== 0) throw new SilentExit(code);
}
