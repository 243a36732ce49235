import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import type { BoardRow, SubmitInfo } from '../../src/protocol/types.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';
import { makeTree } from '../helpers/tree.js';

// KHD code as participants and organisers wrote it, run unmodified against a real server in the
// sandbox: NSML's dataset layout (labels inside test/), loaders importing nsml.constants,
// evaluation.py scripts with their own label paths, a loader that embeds the truth, a
// teammate's ensemble, Keras-style list reports.

let server: TestServer;
let admin: Participant;
let kim: Participant;
let park: Participant;
const cleanups: (() => void)[] = [];

function tree(files: Record<string, string>): string {
  const t = makeTree(files, 'khd-khd-');
  cleanups.push(t.cleanup);
  return t.root;
}

async function push(name: string, files: Record<string, string>, args: string[]) {
  return admin.khd(['dataset', 'push', name, tree(files), ...args]);
}

async function pushOk(name: string, files: Record<string, string>, args: string[]) {
  const r = await push(name, files, args);
  expect(r.code, r.stderr).toBe(EXIT.ok);
  return r;
}

/** `khd run -d DATASET -i` of `main.py` as `who`: the session's name. */
async function train(who: Participant, dataset: string, main: string): Promise<string> {
  const r = await who.khd(['run', '-d', dataset, '-i'], { cwd: tree({ 'main.py': main }) });
  expect(r.code, r.stdout + r.stderr).toBe(EXIT.ok);
  return /Session (\S+) is started/.exec(r.stdout)![1]!;
}

/** How the datasets' data_loader.py files began: nsml.constants, the test folder under DATASET_PATH. */
const LOADER_HEAD = [
  'import os',
  'from nsml.constants import DATASET_PATH',
  '',
  'def feed_infer(output_file, infer_func):',
  "    root_path = os.path.join(DATASET_PATH, 'test')",
];

/**
 * NSML's layout, as KHD datasets had it: test/test_data/ with test/test_label inside test/, the
 * same for the public sample; a loader importing nsml.constants; three cases, all 1.
 */
const NSML_LAYOUT = {
  'train/train_data/0.txt': '1', 'train/train_data/1.txt': '0', 'train/train_label': '1\n0\n',
  'test/test_data/a.txt': 'x', 'test/test_data/b.txt': 'x', 'test/test_data/c.txt': 'x', 'test/test_label': '1\n1\n1\n',
  'test_submit/test_data/a.txt': 'x', 'test_submit/test_label': '1\n',
  'data_loader.py': [
    ...LOADER_HEAD,
    '    predictions = infer_func(root_path)',
    "    with open(output_file, 'w') as f:",
    "        f.write('\\n'.join(str(p) for p in predictions) + '\\n')",
  ].join('\n'),
};

/** A KHD baseline: nsml.constants, bind_model, save each epoch, paused; infer answers 1 per file. */
const BASELINE = `
import argparse, os
import nsml
from nsml.constants import DATASET_PATH, GPU_NUM

def bind_model(model):
    def save(dir_name, **kwargs):
        open(os.path.join(dir_name, 'model.txt'), 'w').write(model['answer'])
    def load(dir_name, **kwargs):
        model['answer'] = open(os.path.join(dir_name, 'model.txt')).read()
    def infer(root_path, **kwargs):
        names = sorted(os.listdir(os.path.join(root_path, 'test_data')))
        print('test folder holds', sorted(os.listdir(root_path)))
        return [model['answer'] for _ in names]
    nsml.bind(save=save, load=load, infer=infer)

if __name__ == '__main__':
    args = argparse.ArgumentParser()
    args.add_argument('--mode', type=str, default='train')
    args.add_argument('--iteration', type=str, default='0')
    args.add_argument('--pause', type=int, default=0)
    config = args.parse_args()
    model = {'answer': '1'}
    bind_model(model)
    if config.pause:
        nsml.paused(scope=locals())
    if config.mode == 'train':
        print('GPU_NUM', GPU_NUM, 'train files', sorted(os.listdir(os.path.join(DATASET_PATH, 'train', 'train_data'))))
        hist = {'loss': [0.9, 0.5, 0.25], 'acc': [0.5, 0.75, 1.0]}
        for epoch in range(2):
            nsml.report(summary=True, step=epoch, epoch_total=2, loss=hist['loss'], acc=hist['acc'])
            nsml.save(epoch)
        nsml.save('best')
`;

/** KHD2019's scorer: only --prediction, the labels from a path of its own, relative to where it runs. */
const EVALUATION_RELATIVE = (dataset: string) => `
import argparse

def read(path):
    return [line.strip() for line in open(path) if line.strip()]

if __name__ == '__main__':
    args = argparse.ArgumentParser()
    args.add_argument('--prediction', type=str, default='pred.txt')
    config = args.parse_args()
    # use the full path
    test_label_path = 'data/${dataset}/test/test_label'
    predictions, labels = read(config.prediction), read(test_label_path)
    print(sum(p == l for p, l in zip(predictions, labels)) / len(labels))
`;

/** An organiser's scorer with an absolute path of the platform's. */
const EVALUATION_ABSOLUTE = (dataset: string) => EVALUATION_RELATIVE(dataset).replace(`'data/${dataset}/test/test_label'`, `'/data/${dataset}/test/test_label'`);

beforeAll(async () => {
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim', 'KHD005');
  park = await admin.addUser('park', 'KHD005');
}, 120_000);

afterAll(async () => {
  [kim, park, admin].forEach((p) => p?.cleanup());
  cleanups.forEach((c) => c());
  await server.stop();
});

describe("NSML's dataset layout", () => {
  it("keeps test/test_label from participant code: a submit that returns the labels it finds scores what it predicted (the leak)", async () => {
    await pushOk('nsml_layout', NSML_LAYOUT, ['--leaderboard']);
    // A participant after the top of the board: infer returns the hidden labels if it can find them.
    const cheat = await train(kim, 'nsml_layout', BASELINE.replace("    model = {'answer': '1'}", "    model = {'answer': '0'}").replace(
      "        return [model['answer'] for _ in names]",
      [
        "        leaked = os.path.join(root_path, 'test_label')",
        "        print('leak', os.path.exists(leaked), os.path.exists(os.path.join(DATASET_PATH, 'test_label')))",
        "        if os.path.exists(leaked):",
        "            return open(leaked).read().split()",
        "        return [model['answer'] for _ in names]",
      ].join('\n'),
    ));
    const test = await kim.khd(['submit', '-t', cheat, 'best']);
    expect(test.code, test.stderr).toBe(EXIT.ok);
    expect(test.stdout).toContain("test folder holds ['test_data']\nleak False False\n");
    expect(test.stdout).toMatch(/Score: 0\n$/);
    const real = await kim.khd(['submit', cheat, 'best']);
    expect(real.stdout).toBe('Score: 0\n');
  });

  it('scores a baseline that imports nsml.constants through a loader that imports it too', async () => {
    const name = await train(park, 'nsml_layout', BASELINE);
    const test = await park.khd(['submit', '-t', name, 'best']);
    expect(test.code, test.stderr).toBe(EXIT.ok);
    expect(test.stdout).toMatch(/Score: 1\n$/);
    const logs = await park.khd(['logs', name]);
    expect(logs.stdout).toContain("GPU_NUM 0 train files ['0.txt', '1.txt']\n");
  });

  it('records a Keras history list as its last value, in the summary', async () => {
    const name = await train(park, 'nsml_layout', BASELINE);
    const session = await park.session(name);
    expect(session.summary).toEqual({ epoch_total: 2, loss: 0.25, acc: 1 });
  });

  it('refuses a layout that would show labels to participant code, naming the file and the fix', async () => {
    const r = await push('visible_labels', { ...NSML_LAYOUT, 'test/test_data/labels.csv': '1,1,1\n' }, ['--leaderboard']);
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toContain(
      'error: test/test_data/labels.csv looks like ground truth, and a submit would show it to participant code at DATASET_PATH/test/test_data/labels.csv: ' +
        'mark it as labels with --label test_data/labels.csv (the scorer gets it, participant code never does), or as an input with --visible test_data/labels.csv\n',
    );
    // The folder is fine once the file is marked: it goes to the scorer, not to submits.
    const marked = await pushOk('marked_labels', { ...NSML_LAYOUT, 'test/test_data/labels.csv': '1,1,1\n' }, ['--leaderboard', '--label', 'test_data/labels.csv', '--label', 'test_label']);
    expect(marked.stderr).toContain('submits see DATASET_PATH/test: test/, 3 files; labels, for the scorer only: test/test_data/labels.csv, test/test_label\n');
  });

  it('refuses a leaderboard whose built-in metric would have no labels, before participants find out', async () => {
    const { 'test/test_label': _gone, ...files } = NSML_LAYOUT;
    const r = await push('no_labels', files, ['--leaderboard']);
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toContain('--metric accuracy scores predictions against test/test_label (or a root test_label), and the folder has neither');
  });
});

describe("the organisers' evaluation.py", () => {
  it.each([
    ['relative', EVALUATION_RELATIVE],
    ['absolute', EVALUATION_ABSOLUTE],
  ])('finds data/DATASET/test/test_label by its %s path, and is not given --test_label_path it does not take', async (kind, evaluation) => {
    const dataset = `eval_${kind}`;
    await pushOk(dataset, { ...NSML_LAYOUT, 'evaluation.py': evaluation(dataset) }, ['--leaderboard', '--metric', 'custom']);
    const name = await train(kim, dataset, BASELINE);
    // The sample's labels are there under the same name for -t: one case, right.
    const test = await kim.khd(['submit', '-t', name, 'best']);
    expect(test.code, test.stderr).toBe(EXIT.ok);
    expect(test.stdout).toMatch(/Score: 1\n$/);
  });
});

describe('a loader that embeds the truth (KHD2020 Track A: labels from the file names)', () => {
  const TRACK_A = {
    'train/train_data/1_0001.txt': 'x',
    'test/test_data/1_0101.txt': 'x', 'test/test_data/0_0102.txt': 'x', 'test/test_data/1_0103.txt': 'x', 'test/test_data/1_0104.txt': 'x',
    'test_submit/test_data/0_0201.txt': 'x',
    'data_loader.py': [
      ...LOADER_HEAD,
      "    names = sorted(os.listdir(os.path.join(root_path, 'test_data')))",
      '    predictions = infer_func(root_path)',
      "    with open(output_file, 'w') as f:",
      '        for name, p in zip(names, predictions):',
      "            f.write('%s %s\\n' % (p, name.split('_')[0]))",
    ].join('\n'),
    'evaluation.py': [
      'import argparse',
      'args = argparse.ArgumentParser()',
      "args.add_argument('--prediction', type=str, default='pred.txt')",
      'config = args.parse_args()',
      'pairs = [line.split() for line in open(config.prediction) if line.strip()]',
      'print(sum(p == t for p, t in pairs) / len(pairs))',
    ].join('\n'),
  };

  it('scores real and test submits with no label file anywhere', async () => {
    const push = await pushOk('track_a', TRACK_A, ['--leaderboard', '--metric', 'custom']);
    expect(push.stderr).toContain('submits see DATASET_PATH/test: test/, 4 files; no labels\n');
    const name = await train(kim, 'track_a', BASELINE);
    expect((await kim.khd(['submit', '-t', name, 'best'])).stdout).toMatch(/Score: 0\n$/);
    expect((await kim.khd(['submit', name, 'best'])).stdout).toBe('Score: 0.75\n');
  });
});

describe('a test submit on a sample without labels', () => {
  it('succeeds, says it was not scored and why, and shows the first predictions', async () => {
    const { 'test_submit/test_label': _gone, ...files } = NSML_LAYOUT;
    const push = await pushOk('sample_unlabelled', files, ['--leaderboard']);
    expect(push.stderr).toContain('test submits (-t) see DATASET_PATH/test: test_submit/, 1 file; no labels: test submits are not scored\n');
    const name = await train(kim, 'sample_unlabelled', BASELINE);
    const test = await kim.khd(['submit', '-t', name, 'best']);
    expect(test.code, test.stderr).toBe(EXIT.ok);
    expect(test.stdout).not.toContain('Score:');
    expect(test.stderr).toContain(
      "not scored: sample_unlabelled's test_submit/ sample has no labels (the dataset has no labels to score against (test_label)); the organiser can add test_submit/test_label\n" +
        'First predictions:\n  1\n',
    );
    const history = JSON.parse((await kim.khd(['dataset', 'submits', 'sample_unlabelled', '--json'])).stdout) as SubmitInfo[];
    expect(history[0]).toMatchObject({ status: 'unscored', score: null, error: null, preview: ['1'] });
  });
});

describe("a teammate's ensemble", () => {
  it("loads a teammate's checkpoint at the top of main.py, before paused(), in training and in a submit", async () => {
    await pushOk('ensemble', NSML_LAYOUT, ['--leaderboard', '--submit-interval', '1s']);
    const first = await train(kim, 'ensemble', BASELINE);
    const ensemble = BASELINE.replace(
      '    bind_model(model)\n',
      [
        '    bind_model(model)',
        "    nsml.load(checkpoint='1', session='" + first + "')",
        "    print('ensemble member loaded:', model['answer'])",
        "    model['answer'] = '1'",
        '',
      ].join('\n'),
    );
    const second = await train(park, 'ensemble', ensemble);
    const logs = await park.khd(['logs', second]);
    expect(logs.stdout).toContain('ensemble member loaded: 1\n');
    const test = await park.khd(['submit', '-t', second, 'best']);
    expect(test.code, test.stderr).toBe(EXIT.ok);
    expect(test.stdout).toContain('ensemble member loaded: 1\n');
    expect(test.stdout).toMatch(/Score: 1\n$/);
    const real = await park.khd(['submit', second, 'best']);
    expect(real.stdout).toBe('Score: 1\n');
    const board = JSON.parse((await kim.khd(['dataset', 'board', 'ensemble', '--json'])).stdout) as BoardRow[];
    expect(board).toMatchObject([{ rank: 1, name: second, team: 'KHD005', score: 1 }]);
  });
});

describe('a dataset pushed before labels had a folder of their own', () => {
  it('has its labels moved out of what submits see at the next start', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'khd-legacy-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startTestServer({ dataDir });
    const owner = new Participant(first.url);
    cleanups.push(() => owner.cleanup());
    await owner.login('admin', ADMIN_PASSWORD);
    expect((await owner.khd(['dataset', 'push', 'old', tree(NSML_LAYOUT), '--leaderboard'])).code).toBe(EXIT.ok);
    await first.stop();
    // Where servers before this one left them: NSML's inside test/, khd's at the root.
    const ds = join(dataDir, 'datasets', 'old');
    renameSync(join(ds, 'labels', 'test', 'test_label'), join(ds, 'private', 'test', 'test_label'));
    renameSync(join(ds, 'labels', 'test_submit', 'test_label'), join(ds, 'private', 'test_submit_label'));
    rmSync(join(ds, 'labels'), { recursive: true });

    const second = await startTestServer({ dataDir });
    try {
      expect(existsSync(join(ds, 'private', 'test', 'test_label'))).toBe(false);
      const again = new Participant(second.url);
      cleanups.push(() => again.cleanup());
      await again.login('admin', ADMIN_PASSWORD);
      const name = await train(again, 'old', BASELINE);
      const test = await again.khd(['submit', '-t', name, 'best']);
      expect(test.stdout).toContain("test folder holds ['test_data']\n");
      expect(test.stdout).toMatch(/Score: 1\n$/);
      expect((await again.khd(['submit', name, 'best'])).stdout).toBe('Score: 1\n');
    } finally {
      await second.stop();
    }
  });
});
