import { makeTree } from './tree.js';

/** Reports what a session can see and do: its dataset, GPUs, network, and its exit code. */
export const PROBE_PY = `
import os, socket, sys
import nsml
port, code = int(sys.argv[1]), int(sys.argv[2])
print('dataset', nsml.DATASET_NAME, sorted(os.listdir(nsml.DATASET_PATH)) if nsml.HAS_DATASET else None)
print('gpus', nsml.GPU_NUM, repr(os.environ.get('CUDA_VISIBLE_DEVICES')))
print('session', nsml.SESSION_NAME, nsml.IS_ON_NSML)
try:
    open(os.path.join(nsml.DATASET_PATH, 'train', 'new.txt'), 'w')
    print('dataset writable')
except OSError:
    print('dataset read-only')
s = socket.socket()
s.settimeout(2)
try:
    s.connect(('127.0.0.1', port))
    print('network reachable')
except OSError:
    print('network unreachable')
print('files', sorted(os.listdir('.')))
print('to stderr', file=sys.stderr)
sys.exit(code)
`;

/** Prints `tick N` every `interval` seconds, `count` times. */
export const TICKER_PY = `
import sys, time
count, interval = int(sys.argv[1]), float(sys.argv[2])
for i in range(count):
    print('tick', i + 1, flush=True)
    time.sleep(interval)
`;

export function project(files: Record<string, string>) {
  return makeTree(files, 'khd-project-');
}

export function datasetFolder() {
  return makeTree(
    {
      'train/data.txt': 'hello\nworld\n',
      'test/x.txt': 'hidden input\n',
      test_label: 'hidden labels\n',
    },
    'khd-dataset-',
  );
}
