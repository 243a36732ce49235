"""Scores breast_cancer the KHD2020 Track B way: the mean of accuracy, precision, recall,
specificity, NPV and F1, with malignant (1) as the positive class.

    python evaluation.py --prediction PREDICTIONS [--test_label_path LABELS]

Prints the score on its last line. Predictions and labels hold one 0/1 label per line. As the
organisers' scripts did, it reads the labels from data/breast_cancer/test/test_label under the
folder it runs in unless told otherwise: the scorer lays that folder out.
"""
import argparse
import os
import sys


def read(path):
    with open(path) as f:
        return [int(float(line)) for line in f if line.strip()]


def khd_track_b(predictions, labels):
    tp = sum(1 for p, y in zip(predictions, labels) if p == 1 and y == 1)
    tn = sum(1 for p, y in zip(predictions, labels) if p == 0 and y == 0)
    fp = sum(1 for p, y in zip(predictions, labels) if p == 1 and y == 0)
    fn = sum(1 for p, y in zip(predictions, labels) if p == 0 and y == 1)
    ratio = lambda a, b: a / b if b else 0.0
    accuracy = ratio(tp + tn, len(labels))
    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    specificity = ratio(tn, tn + fp)
    npv = ratio(tn, tn + fn)
    f1 = ratio(2 * precision * recall, precision + recall)
    return (accuracy + precision + recall + specificity + npv + f1) / 6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prediction", required=True)
    parser.add_argument("--test_label_path", default=os.path.join("data", "breast_cancer", "test", "test_label"))
    args = parser.parse_args()
    predictions, labels = read(args.prediction), read(args.test_label_path)
    if len(predictions) != len(labels):
        sys.exit("expected %d predictions, got %d" % (len(labels), len(predictions)))
    print(khd_track_b(predictions, labels))


if __name__ == "__main__":
    main()
