import { makeTree } from './tree.js';

/**
 * A KHD-style project whose submit misbehaves on demand (`-a "--behaviour X"`): it trains two
 * checkpoints, `best` (answers 1) and `worse` (answers 0), and infers one answer per test item.
 */
export const SUBMIT_PROJECT_PY = `
import argparse, os, sys, time
import nsml
p = argparse.ArgumentParser()
p.add_argument('--mode', default='train')
p.add_argument('--pause', type=int, default=0)
p.add_argument('--iteration', default='0')
p.add_argument('--behaviour', default='ok')
args = p.parse_args()
b = args.behaviour
model = {}
def save(d):
    open(os.path.join(d, 'm.txt'), 'w').write(model['answer'] * (4000 if b == 'big' else 1))
def load(d):
    model['answer'] = open(os.path.join(d, 'm.txt')).read()[:1]
def infer(test_path):
    if b == 'infer-raises': raise ValueError('boom')
    if b == 'infer-none': return None
    if b == 'infer-hang': time.sleep(60)
    print('sees', sorted(os.listdir(nsml.DATASET_PATH)), 'with', len(os.listdir(test_path)), 'test items')
    items = sorted(os.listdir(test_path))
    if b == 'infer-short': items = items[:-1]
    return [model['answer'] for _ in items]
nsml.bind(save=save, load=load, infer=infer)
if args.pause and b == 'crash': sys.exit(3)
if args.pause and b == 'hang-before-pause': time.sleep(60)
if args.pause and b != 'nopause':
    nsml.paused(scope=locals())
if args.mode == 'train':
    model['answer'] = '1'
    nsml.report(summary=True, epoch=1, train__loss=0.5)
    nsml.save('best')
    model['answer'] = '0'
    nsml.report(summary=True, epoch=2, train__loss=0.75)
    nsml.save('worse')
    print('trained')
`;

/** Four hidden test items (labels 1 1 1 0), two public ones (labels 1 1). */
export function submitDataset(extra: Record<string, string> = {}, options: { publicSample?: boolean } = {}) {
  const sample: Record<string, string> = options.publicSample === false ? {} : { 'test_submit/a': '', 'test_submit/b': '', test_submit_label: '1\n1\n' };
  return makeTree(
    {
      'train/x.txt': 'train',
      'test/a': '', 'test/b': '', 'test/c': '', 'test/d': '',
      test_label: '1\n1\n1\n0\n',
      ...sample,
      ...extra,
    },
    'khd-submit-dataset-',
  );
}
