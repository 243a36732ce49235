"""NSML's hello example, as KHD participants first ran it: read the dataset, count GPUs, say hello."""
import os

import nsml
from nsml import DATASET_NAME, DATASET_PATH, GPU_NUM

if __name__ == '__main__':
    if nsml.HAS_DATASET:
        with open(os.path.join(DATASET_PATH, 'train', 'data.txt')) as f:
            words = f.read().split()
        print('read from dataset', DATASET_NAME, words)
    else:
        print('no dataset: run with khd run -d hello_nsml')
    print('Number of gpus:', GPU_NUM)
    for i in range(20):
        print('Hello NSML', i)
