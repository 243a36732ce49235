import { describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../../protocol/types.js';
import { labelNames, planDataset } from './dataset-layout.js';

const files = (...paths: string[]): ManifestEntry[] => paths.map((path) => ({ path, size: 1, mode: 0o644, sha256: 'a'.repeat(64) }));
const paths = (entries: ManifestEntry[]) => entries.map((e) => e.path);
const board = { leaderboard: true, metric: 'accuracy' } as const;
const none = { labels: [], visible: [] };

describe('planDataset', () => {
  it("takes NSML's labels out of test/ and test_submit/: submits never see them", () => {
    const plan = planDataset(
      files('train/train_data/a.png', 'train/train_label', 'test/test_data/b.png', 'test/test_label', 'test_submit/test_data/c.png', 'test_submit/test_label', 'data_loader.py'),
      none, board,
    );
    expect(paths(plan.public)).toEqual(['train/train_data/a.png', 'train/train_label']);
    expect(paths(plan.private)).toEqual(['test/test_data/b.png', 'test_submit/test_data/c.png', 'data_loader.py']);
    expect(paths(plan.labels)).toEqual(['test/test_label', 'test_submit/test_label']);
    expect(plan.layout).toEqual({
      train: 2, test: { files: 1, labels: ['test/test_label'] }, testSubmit: { files: 1, labels: ['test_submit/test_label'] },
      scoring: 'accuracy', kept: ['data_loader.py'],
    });
  });

  it("takes khd's root test_label and test_submit_label as the same two label files", () => {
    const plan = planDataset(files('train/x', 'test/a', 'test_label', 'test_submit/a', 'test_submit_label'), none, board);
    expect(paths(plan.labels)).toEqual(['test/test_label', 'test_submit/test_label']);
    expect(plan.layout.test).toEqual({ files: 1, labels: ['test_label'] });
  });

  it('takes the names marked with --label, nested too, and keeps --visible ones as inputs', () => {
    const plan = planDataset(
      files('train/x', 'test/imgs/a.png', 'test/gt/answers.csv', 'test/label_map.json', 'test_submit/gt/answers.csv'),
      { labels: ['gt/answers.csv'], visible: ['label_map.json'] }, board,
    );
    expect(paths(plan.labels)).toEqual(['test/gt/answers.csv', 'test_submit/gt/answers.csv']);
    expect(paths(plan.private)).toEqual(['test/imgs/a.png', 'test/label_map.json']);
    expect(labelNames(['gt/answers.csv'])).toEqual(['gt/answers.csv', 'test_label']);
  });

  it.each([
    [['test/test_data/labels.csv'], 'test/test_data/labels.csv looks like ground truth, and a submit would show it to participant code at DATASET_PATH/test/test_data/labels.csv: mark it as labels with --label test_data/labels.csv'],
    [['test_submit/truth.txt'], 'test_submit/truth.txt looks like ground truth, and a test submit would show it'],
    [['test/y_gt.npy'], 'test/y_gt.npy looks like ground truth'],
  ])('refuses %s, which looks like labels, until it is marked', (extra, message) => {
    expect(() => planDataset(files('train/x', 'test/a', 'test_label', ...extra), none, board)).toThrow(message);
  });

  it('refuses two label files for one folder, naming both', () => {
    expect(() => planDataset(files('train/x', 'test/a', 'test_label', 'test/test_label'), none, board)).toThrow(
      'test_label and test/test_label are both the labels of test/: keep one of them',
    );
  });

  it('refuses a leaderboard it could not score: no test/, no labels for a built-in metric, custom without evaluation.py', () => {
    expect(() => planDataset(files('train/x'), none, board)).toThrow('a dataset with --leaderboard needs test/');
    expect(() => planDataset(files('train/x', 'test/a'), none, board)).toThrow(
      '--metric accuracy scores predictions against test/test_label (or a root test_label), and the folder has neither',
    );
    expect(() => planDataset(files('train/x', 'test/a'), none, { leaderboard: true, metric: 'custom' })).toThrow('--metric custom scores with the dataset\'s evaluation.py');
    expect(() => planDataset(files('train/x', 'test/a'), { labels: ['answers.csv'], visible: [] }, board)).toThrow('no file test/answers.csv or test_submit/answers.csv');
  });

  it('lets a custom metric score without any label file (the truth may be in the predictions)', () => {
    const plan = planDataset(files('train/x', 'test/0_a.png', 'test_submit/1_b.png', 'evaluation.py'), none, { leaderboard: true, metric: 'custom' });
    expect(plan.labels).toEqual([]);
    expect(plan.layout).toMatchObject({ test: { files: 1, labels: [] }, testSubmit: { files: 1, labels: [] }, scoring: 'evaluation.py', kept: ['evaluation.py'] });
  });
});
