import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { checkName } from '../../../protocol/session-name.js';
import { formatSize, parseDuration, parseSize } from '../../../protocol/sizes.js';
import { scanProject } from '../../../pack/scan.js';
import type { Context } from '../../context.js';
import { CliError, UsageError } from '../../errors.js';
import { createUploadProgress } from '../../render/upload-progress.js';
import { uploadTree } from '../../upload/upload-tree.js';
import type { PushDatasetResponse } from '../../../protocol/types.js';
import type { DatasetPushOptions, DatasetSettingsOptions } from './dataset.js';

export async function runDatasetPush(name: string, path: string, opts: DatasetPushOptions, ctx: Context): Promise<void> {
  try {
    checkName('dataset', name);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const options = parsePushOptions(opts);
  const root = resolve(ctx.cwd, path);
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`${path} is not a folder: give the dataset folder (with train/ inside)`);
  const scan = await scanProject(root, { useIgnoreRules: false });
  if (scan.unreadable.length > 0) throw new CliError(`cannot read ${scan.unreadable.slice(0, 10).join(', ')} in ${root}`);
  if (!scan.included.some((f) => f.path.startsWith('train/'))) {
    throw new CliError(`${root} has no files under train/: sessions see only DATASET_PATH/train (see docs/datasets.md)`);
  }
  for (const l of scan.leftOut) ctx.io.err(`note: ${l.path} left out (${l.reason})\n`);
  const api = await ctx.api();
  const me = await api.calls.me();
  if (!me.admin) throw new CliError(`only an admin can push datasets; you are ${me.user}`);
  if ((await api.calls.datasets()).some((d) => d.name === name)) {
    throw new CliError(`dataset '${name}' already exists: push under a new name`);
  }
  const progress = await createUploadProgress(ctx.io);
  const upload = await uploadTree(ctx, api, { root, files: scan.included, purpose: 'dataset', progress }).finally(() => progress.done());
  try {
    const { whileAway } = await import('../../api/failures.js');
    const info = await whileAway(ctx, 'pushing the dataset', () =>
      api.calls.pushDataset({
        name, upload: upload.id, leaderboard: opts.leaderboard, metric: opts.metric, order: opts.order,
        private: opts.private, modelPull: opts.modelPull, description: opts.message, labels: opts.label, visible: opts.visible, ...options,
      }),
    );
    ctx.io.err(`✓ Pushed dataset ${info.name}: ${info.files} files, ${formatSize(info.size)}\n${describeLayout(info)}`);
  } finally {
    upload.release();
  }
}

function parseOption<T>(flag: string, text: string | undefined, parse: (t: string) => T | undefined, example: string): T | undefined {
  if (text === undefined) return undefined;
  const value = parse(text);
  if (value === undefined || value === 0) throw new UsageError(`${flag} '${text}' is not valid: use e.g. ${example}`);
  return value;
}

const parseTime = (text: string) => (Number.isNaN(Date.parse(text)) ? undefined : new Date(Date.parse(text)).toISOString());

/** The sizes, durations and times of `dataset push`, each refused with its flag named. */
export function parsePushOptions(opts: DatasetSettingsOptions) {
  return {
    modelSizeLimit: parseOption('--model-size-limit', opts.modelSizeLimit, parseSize, '300MB'),
    submitIntervalMs: parseOption('--submit-interval', opts.submitInterval, parseDuration, '1h, 30m or 10s'),
    pausedTimeoutMs: parseOption('--paused-timeout', opts.pausedTimeout, parseDuration, '10m'),
    inferTimeoutMs: parseOption('--infer-timeout', opts.inferTimeout, parseDuration, '1h'),
    submitFrom: parseOption('--submit-from', opts.submitFrom, parseTime, '2026-12-01T09:00:00+09:00'),
    submitUntil: parseOption('--submit-until', opts.submitUntil, parseTime, '2026-12-03T18:00:00+09:00'),
  };
}

/** What each kind of session will see, where the labels went, and the limits a submit meets. */
export function describeLayout(info: PushDatasetResponse): string {
  const { layout } = info;
  const part = (from: string, p: { files: number; labels: string[] }, scored: boolean) =>
    `${from}, ${p.files} file${p.files === 1 ? '' : 's'}; ` +
    (p.labels.length > 0 ? `labels, for the scorer only: ${p.labels.join(', ')}` : scored ? 'no labels' : 'no labels: test submits are not scored');
  const lines = [`  training sessions see DATASET_PATH/train: ${layout.train} file${layout.train === 1 ? '' : 's'}`];
  if (layout.test) lines.push(`  submits see DATASET_PATH/test: ${part('test/', layout.test, true)}`);
  if (layout.testSubmit) lines.push(`  test submits (-t) see DATASET_PATH/test: ${part('test_submit/', layout.testSubmit, info.metric === 'custom')}`);
  lines.push(`  scored by ${layout.scoring === 'evaluation.py' ? 'the dataset\'s evaluation.py' : layout.scoring}${info.leaderboard ? `, on a leaderboard (${info.order === 'desc' ? 'higher' : 'lower'} is better)` : ''}`);
  if (layout.kept.length > 0) lines.push(`  kept by the server: ${layout.kept.join(', ')}`);
  lines.push(`  a submitted checkpoint may be up to ${formatSize(info.modelSizeLimit)} (push with --model-size-limit to allow larger models)`);
  if (!info.modelPull) lines.push("  checkpoints and sessions' files stay on the server: khd model pull and khd download are refused");
  return `${lines.join('\n')}\n`;
}
