import { formatDuration, formatSize } from '../../../protocol/sizes.js';
import { formatTime } from '../../../protocol/format.js';
import type { DatasetChange, DatasetChangeRecord } from '../../../protocol/types.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { renderTable } from '../../render/table.js';
import type { DatasetChangeOptions } from './dataset.js';
import { parsePushOptions } from './push.js';

/** A setting's value as typed: sizes and durations in words, an empty one as (none). */
function show(field: string, v: unknown): string {
  if (v === null || v === undefined || v === '') return '(none)';
  if (typeof v === 'number') return field.endsWith('Ms') ? formatDuration(v) : field === 'modelSizeLimit' ? formatSize(v) : String(v);
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** `khd dataset change NAME [options]`: what changed (old → new); with no option, the log of changes. */
export async function runDatasetChange(name: string, opts: DatasetChangeOptions, modelPullGiven: boolean, ctx: Context): Promise<void> {
  if (opts.private && opts.public) throw new UsageError('--private and --public contradict each other: give one');
  const none = (v: string | undefined) => (v === 'none' ? undefined : v);
  const parsed = parsePushOptions({ ...opts, submitFrom: none(opts.submitFrom), submitUntil: none(opts.submitUntil) });
  const change: DatasetChange = {
    description: opts.message,
    metric: opts.metric,
    order: opts.order,
    modelSizeLimit: parsed.modelSizeLimit,
    submitIntervalMs: parsed.submitIntervalMs,
    pausedTimeoutMs: parsed.pausedTimeoutMs,
    inferTimeoutMs: parsed.inferTimeoutMs,
    submitFrom: opts.submitFrom === 'none' ? null : parsed.submitFrom,
    submitUntil: opts.submitUntil === 'none' ? null : parsed.submitUntil,
    private: opts.private ? true : opts.public ? false : undefined,
    modelPull: modelPullGiven ? opts.modelPull : undefined,
  };
  const given = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) as DatasetChange;
  const api = await ctx.api();
  if (Object.keys(given).length === 0) {
    const log = await api.calls.datasetChanges(name);
    if (opts.json) return ctx.io.out(`${JSON.stringify(log, null, 2)}\n`);
    if (log.length === 0) return ctx.io.err(`${name} has not been changed since it was pushed\n`);
    const now = ctx.clock();
    return ctx.io.out(renderTable(['When', 'By', 'Setting', 'Was', 'Now'], log.map((c) => [formatTime(c.at, now, ctx.utc), c.by, c.field, show(c.field, c.old), show(c.field, c.new)])));
  }
  const { changes } = await api.calls.changeDataset(name, given);
  if (opts.json) return ctx.io.out(`${JSON.stringify(changes, null, 2)}\n`);
  if (changes.length === 0) return ctx.io.err(`${name} already had those settings: nothing changed\n`);
  ctx.io.err(changes.map((c: DatasetChangeRecord) => `✓ ${name}: ${c.field} ${show(c.field, c.old)} → ${show(c.field, c.new)}\n`).join(''));
}

/** `khd dataset fs NAME` (admin): each file, the part it went to at push, its size. */
export async function runDatasetFs(name: string, opts: { json?: boolean }, ctx: Context): Promise<void> {
  const api = await ctx.api();
  const files = await api.calls.datasetFiles(name);
  if (opts.json) return ctx.io.out(`${JSON.stringify(files, null, 2)}\n`);
  ctx.io.out(renderTable(['Part', 'Path', 'Size'], files.map((f) => [f.part, f.path, formatSize(f.size)])));
}
