"""Makes the khd dataset folder for breast_cancer from data/breast_cancer.csv (WDBC, 569 cases).

    python3 prepare_dataset.py OUT_DIR

NSML's layout, as the KHD datasets had it: a fixed-seed split into 114 cases for the hidden test
set (test/test_data.csv with its labels in test/test_label), 57 for the public sample
(test_submit/, the same way), the remaining 398 for train/. khd takes the two test_label files
out of what submits see and gives them to the scorer only. Labels are recoded so that
1 = malignant (the finding a screen must not miss) and 0 = benign.
"""
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 2020
N_TEST = 114
N_TEST_SUBMIT = 57


def load():
    rows = np.loadtxt(os.path.join(HERE, "data", "breast_cancer.csv"), delimiter=",", skiprows=1)
    features, label = rows[:, :30], rows[:, 30].astype(int)
    return features, 1 - label  # CSV: 0 = malignant; here 1 = malignant


def write_features(path, features):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savetxt(path, features, delimiter=",", fmt="%.6g")


def write_labels(path, labels):
    with open(path, "w") as f:
        f.writelines("%d\n" % y for y in labels)


def main(out):
    features, labels = load()
    order = np.random.RandomState(SEED).permutation(len(labels))
    test, sample, train = order[:N_TEST], order[N_TEST:N_TEST + N_TEST_SUBMIT], order[N_TEST + N_TEST_SUBMIT:]
    if os.path.exists(out):
        shutil.rmtree(out)
    train_rows = np.column_stack([features[train], labels[train]])
    os.makedirs(os.path.join(out, "train"))
    np.savetxt(os.path.join(out, "train", "train_data.csv"), train_rows, delimiter=",",
               fmt=["%.6g"] * 30 + ["%d"])
    write_features(os.path.join(out, "test", "test_data.csv"), features[test])
    write_labels(os.path.join(out, "test", "test_label"), labels[test])
    write_features(os.path.join(out, "test_submit", "test_data.csv"), features[sample])
    write_labels(os.path.join(out, "test_submit", "test_label"), labels[sample])
    for name in ("data_loader.py", "evaluation.py"):
        shutil.copy(os.path.join(HERE, "dataset_files", name), os.path.join(out, name))
    print("train %d, test %d, test_submit %d cases in %s" % (len(train), len(test), len(sample), out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 prepare_dataset.py OUT_DIR")
    main(sys.argv[1])
