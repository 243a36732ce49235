import { GpuPool } from '../executor/gpus.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Executor } from '../executor/executor.js';
import { NoLabelsError, Scorer } from './scorer.js';

describe('Scorer', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'khd-scorer-'));
    writeFileSync(join(dir, 'predictions'), '1\n0\n');
    writeFileSync(join(dir, 'evaluation.py'), 'print(1)\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['accuracy', 'mse'] as const)('says the dataset has no label file (%s), without starting anything', async (metric) => {
    let started = 0;
    const executor = { sandboxed: true, ownUids: false, queues: false, admission: new GpuPool(0), enforcement: { memory: 'polling every 100 ms' }, start: () => (started++, undefined as never) } satisfies Executor;
    const scoring = new Scorer(executor).score({
      metric, datasetName: 'toy', predictionsDir: dir, predictionsFile: 'predictions', labelsDir: join(dir, 'labels'),
      labelNames: ['answers.csv', 'test_label'], evaluationPy: join(dir, 'evaluation.py'), scratchDir: dir,
    });
    await expect(scoring).rejects.toThrow(new NoLabelsError('the dataset has no labels to score against (answers.csv or test_label)'));
    expect(started).toBe(0);
  });
});
