import type { DatasetOptions } from '../../protocol/types.js';

export type BuiltinMetric = Exclude<DatasetOptions['metric'], 'custom'>;

/** A problem with the predictions themselves: the participant's, so the submit fails without counting. */
export class PredictionError extends Error {}

/** One value per line; a trailing newline is not a value. */
export function readValues(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines.map((l) => l.trim());
}

function numeric(values: string[], what: string): number[] {
  return values.map((v, i) => {
    const n = Number(v);
    if (v === '' || !Number.isFinite(n)) throw new PredictionError(`${what} line ${i + 1} is not a number: '${v.slice(0, 40)}'`);
    return n;
  });
}

function same(a: string, b: string): boolean {
  return a === b || (a !== '' && b !== '' && Number(a) === Number(b));
}

export function accuracy(predicted: string[], truth: string[]): number {
  return predicted.filter((p, i) => same(p, truth[i]!)).length / truth.length;
}

/** The mean over the classes of the labels of each class's F1 (a class never predicted scores 0). */
export function macroF1(predicted: string[], truth: string[]): number {
  const key = (v: string) => (v !== '' && Number.isFinite(Number(v)) ? String(Number(v)) : v);
  const p = predicted.map(key);
  const t = truth.map(key);
  const classes = [...new Set(t)];
  const f1s = classes.map((c) => {
    const tp = p.filter((v, i) => v === c && t[i] === c).length;
    const fp = p.filter((v, i) => v === c && t[i] !== c).length;
    const fn = p.filter((v, i) => v !== c && t[i] === c).length;
    return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  });
  return f1s.reduce((a, b) => a + b, 0) / classes.length;
}

export function mse(predicted: string[], truth: string[]): number {
  const p = numeric(predicted, 'prediction');
  const t = numeric(truth, 'label');
  return p.reduce((sum, v, i) => sum + (v - t[i]!) ** 2, 0) / t.length;
}

export function scoreBuiltin(metric: BuiltinMetric, predictionsText: string, labelsText: string): number {
  const predicted = readValues(predictionsText);
  const truth = readValues(labelsText);
  if (predicted.length !== truth.length) {
    throw new PredictionError(`the predictions have ${predicted.length} line(s); the test set has ${truth.length}`);
  }
  if (truth.length === 0) throw new Error('the label file is empty');
  return { accuracy, macro_f1: macroF1, mse }[metric](predicted, truth);
}
