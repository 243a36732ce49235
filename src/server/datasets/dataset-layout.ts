import { KhdError } from '../../protocol/errors.js';
import type { DatasetLayout, DatasetOptions, ManifestEntry } from '../../protocol/types.js';

/** The folders a submit mounts as DATASET_PATH/test: the hidden set, and the public sample for -t. */
export const TEST_KINDS = ['test', 'test_submit'] as const;
export type TestKind = (typeof TEST_KINDS)[number];

/** The label name both layouts use: NSML's `test/test_label`, khd's root `test_label`. */
export const DEFAULT_LABEL = 'test_label';

/** khd's own layout keeps each kind's labels at the root, beside its folder. */
const ROOT_LABELS: Record<string, TestKind> = { test_label: 'test', test_submit_label: 'test_submit' };

/** A path inside test/ or test_submit/ that reads like ground truth, unless marked one way or the other. */
const LOOKS_LIKE_LABELS = /label|answer|truth|(^|[/_.-])gt([/_.-]|$)/i;

export interface PlannedDataset {
  /** train/, the only part training sessions see. */
  public: ManifestEntry[];
  /** test/ and test_submit/ without their labels, the loaders, everything else: the server's. */
  private: ManifestEntry[];
  /** The labels, as KIND/NAME: only the scorer sees them. */
  labels: ManifestEntry[];
  layout: DatasetLayout;
}

export interface LabelMarks {
  /** Names, inside test/ and test_submit/, of label files (default: test_label). */
  labels: string[];
  /** Names inside test/ and test_submit/ that look like labels but are inputs the code may read. */
  visible: string[];
}

const invalid = (message: string) => new KhdError('KHD_DATASET_INVALID', message);

/**
 * Where each file of a pushed dataset goes. Ground truth is never left where participant code
 * could read it: a label inside test/ or test_submit/ (NSML's layout) is taken out, as is a root
 * test_label (khd's), and a file there that only looks like one is refused until it is marked.
 */
export function planDataset(files: ManifestEntry[], marks: LabelMarks, options: Pick<DatasetOptions, 'leaderboard' | 'metric'>): PlannedDataset {
  const names = marks.labels.length > 0 ? marks.labels : [DEFAULT_LABEL];
  const pub: ManifestEntry[] = [];
  const priv: ManifestEntry[] = [];
  const labels: ManifestEntry[] = [];
  const seen = new Map<string, string>();
  const found: Record<TestKind, string[]> = { test: [], test_submit: [] };
  const inputs: Record<TestKind, number> = { test: 0, test_submit: 0 };
  const label = (f: ManifestEntry, kind: TestKind, name: string) => {
    const to = `${kind}/${name}`;
    const other = seen.get(to);
    if (other) {
      throw invalid(`${other} and ${f.path} are both the labels of ${kind}/: keep one of them (NSML's layout keeps ${kind}/${name}, khd's ${kind === 'test' ? 'test_label' : 'test_submit_label'} at the root)`);
    }
    seen.set(to, f.path);
    found[kind].push(f.path);
    labels.push({ ...f, path: to });
  };
  for (const f of files) {
    const [top, ...rest] = f.path.split('/');
    const inside = rest.join('/');
    if (top === 'train' && rest.length > 0) pub.push(f);
    else if (rest.length === 0 && ROOT_LABELS[top!]) label(f, ROOT_LABELS[top!]!, DEFAULT_LABEL);
    else if ((top === 'test' || top === 'test_submit') && rest.length > 0) {
      if (names.includes(inside)) label(f, top, inside);
      else if (LOOKS_LIKE_LABELS.test(inside) && !marks.visible.includes(inside)) {
        throw invalid(
          `${f.path} looks like ground truth, and a ${top === 'test' ? 'submit' : 'test submit'} would show it to participant code at DATASET_PATH/test/${inside}: ` +
            `mark it as labels with --label ${inside} (the scorer gets it, participant code never does), or as an input with --visible ${inside}`,
        );
      } else {
        priv.push(f);
        inputs[top]++;
      }
    } else priv.push(f);
  }
  const unused = [...names, ...marks.visible].filter((n) => n !== DEFAULT_LABEL && !files.some((f) => f.path === `test/${n}` || f.path === `test_submit/${n}`));
  if (unused.length > 0) throw invalid(`no file test/${unused[0]} or test_submit/${unused[0]}: --label and --visible name files inside test/ and test_submit/`);
  const has = (kind: TestKind) => inputs[kind] > 0 || found[kind].length > 0;
  const evaluation = files.some((f) => f.path === 'evaluation.py');
  if (options.leaderboard && !has('test')) throw invalid('a dataset with --leaderboard needs test/, the hidden test inputs that submits are scored on');
  if (options.metric === 'custom' && !evaluation) throw invalid('--metric custom scores with the dataset\'s evaluation.py, and the folder has none: add it, or choose accuracy, macro_f1 or mse');
  if (options.leaderboard && options.metric !== 'custom' && found.test.length === 0) {
    throw invalid(
      `--metric ${options.metric} scores predictions against test/${names[0]} (or a root test_label), and the folder has neither: ` +
        'add the labels, name yours with --label NAME, or use --metric custom with an evaluation.py',
    );
  }
  const part = (kind: TestKind) => (has(kind) ? { files: inputs[kind], labels: found[kind] } : null);
  return {
    public: pub,
    private: priv,
    labels,
    layout: {
      train: pub.length,
      test: part('test'),
      testSubmit: part('test_submit'),
      scoring: options.metric === 'custom' ? 'evaluation.py' : options.metric,
      kept: priv.filter((f) => !f.path.includes('/')).map((f) => f.path),
    },
  };
}

/**
 * The label names the scorer looks for, in order (the first that exists is the one built-in
 * metrics score against, and the one `--test_label_path` names).
 */
export function labelNames(labels: string[]): string[] {
  return [...new Set([...labels, DEFAULT_LABEL])];
}
