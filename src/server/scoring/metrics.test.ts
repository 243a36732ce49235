import { describe, expect, it } from 'vitest';
import { PredictionError, scoreBuiltin } from './metrics.js';

describe('built-in metrics', () => {
  it('accuracy compares values, numbers by value', () => {
    expect(scoreBuiltin('accuracy', '1\n0\n1.0\ncat\n', '1\n1\n1\ncat\n')).toBe(0.75);
  });

  it('macro F1 averages the F1 of every labelled class', () => {
    // class a: tp 1, fp 1, fn 1 → 0.5; class b: tp 1, fp 1, fn 1 → 0.5; class c: tp 0 → 0
    expect(scoreBuiltin('macro_f1', 'a\nb\nb\na\nc\n', 'a\nb\na\nb\nc\n')).toBeCloseTo((0.5 + 0.5 + 1) / 3);
    expect(scoreBuiltin('macro_f1', '0\n0\n', '0\n1\n')).toBeCloseTo((2 / 3 + 0) / 2);
  });

  it('mean squared error', () => {
    expect(scoreBuiltin('mse', '1\n2\n3\n', '1\n2\n5\n')).toBeCloseTo(4 / 3);
  });

  it('refuses predictions of the wrong length, naming both counts', () => {
    expect(() => scoreBuiltin('accuracy', '1\n', '1\n0\n')).toThrow(new PredictionError('the predictions have 1 line(s); the test set has 2'));
  });

  it('refuses a non-number for mse', () => {
    expect(() => scoreBuiltin('mse', 'x\n', '1\n')).toThrow(/prediction line 1 is not a number/);
  });
});
