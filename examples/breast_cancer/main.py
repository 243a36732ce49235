"""KHD-style baseline for breast_cancer: logistic regression in numpy.

    khd run -d breast_cancer                  # train: reports each epoch, saves each epoch and 'best'
    khd submit -t kim/breast_cancer/1 best    # test submit on the public sample
    khd submit kim/breast_cancer/1 best       # counted submit on the hidden test set

A submit runs this file with --mode test --pause 1: nsml.paused() loads the checkpoint through
bind_model's load and calls infer on the test set.
"""
import argparse
import os

import numpy as np

import nsml
from nsml import DATASET_PATH


class Model:
    def __init__(self, n_features):
        self.w = np.zeros(n_features)
        self.b = 0.0
        self.mean = np.zeros(n_features)
        self.std = np.ones(n_features)

    def fit_scaler(self, x):
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-8

    def proba(self, x):
        z = ((x - self.mean) / self.std) @ self.w + self.b
        return 1.0 / (1.0 + np.exp(-z))

    def predict(self, x):
        return (self.proba(x) >= 0.5).astype(int)


def bind_model(model):
    def save(dir_name):
        np.savez(os.path.join(dir_name, "model.npz"), w=model.w, b=model.b, mean=model.mean, std=model.std)

    def load(dir_name):
        saved = np.load(os.path.join(dir_name, "model.npz"))
        model.w, model.b, model.mean, model.std = saved["w"], float(saved["b"]), saved["mean"], saved["std"]

    def infer(test_path):
        x = np.loadtxt(os.path.join(test_path, "test_data.csv"), delimiter=",", ndmin=2)
        return model.predict(x).tolist()

    nsml.bind(save=save, load=load, infer=infer)


def load_train():
    rows = np.loadtxt(os.path.join(DATASET_PATH, "train", "train_data.csv"), delimiter=",")
    return rows[:, :30], rows[:, 30].astype(int)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", type=str, default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", type=str, default="0")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--l2", type=float, default=1e-3)
    args = parser.parse_args()

    model = Model(30)
    bind_model(model)
    if args.pause:
        nsml.paused(scope=locals())
    if args.mode != "train":
        return

    x, y = load_train()
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    n_valid = len(y) // 5
    valid, train = order[:n_valid], order[n_valid:]
    model.fit_scaler(x[train])
    best = -1.0
    for epoch in range(1, args.epochs + 1):
        p = model.proba(x[train])
        xs = (x[train] - model.mean) / model.std
        grad = p - y[train]
        model.w -= args.lr * (xs.T @ grad / len(train) + args.l2 * model.w)
        model.b -= args.lr * grad.mean()
        loss = -np.mean(y[train] * np.log(p + 1e-12) + (1 - y[train]) * np.log(1 - p + 1e-12))
        train_acc = float(np.mean(model.predict(x[train]) == y[train]))
        valid_acc = float(np.mean(model.predict(x[valid]) == y[valid]))
        print("epoch %d: loss %.4f, train acc %.4f, valid acc %.4f" % (epoch, loss, train_acc, valid_acc))
        nsml.report(summary=True, step=epoch, epoch=epoch, train__loss=float(loss),
                    train__accuracy=train_acc, valid__accuracy=valid_acc)
        nsml.save(epoch)
        if valid_acc > best:
            best = valid_acc
            nsml.save("best")


if __name__ == "__main__":
    main()
