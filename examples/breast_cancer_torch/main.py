"""KHD-style PyTorch baseline for breast_cancer (the dataset of ../breast_cancer): a small MLP.

    khd run -d breast_cancer                  # train: reports and saves every epoch, and 'best'
    khd submit -t kim/breast_cancer/1 best    # test submit on the public sample
    khd submit kim/breast_cancer/1 best       # counted submit on the hidden test set

Written the way the KHD2020 baselines were: the constants from nsml.constants, bind_model with
save/load/infer, the reserved arguments (--mode, --pause, --iteration), nsml.paused() before
training, tensors handed to nsml.report as they are. It needs PyTorch (CPU is enough).
"""
import argparse
import os

import numpy as np
import torch
import torch.nn as nn

import nsml
from nsml.constants import DATASET_PATH, GPU_NUM

N_FEATURES = 30


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(N_FEATURES))
        self.register_buffer("std", torch.ones(N_FEATURES))
        self.layers = nn.Sequential(nn.Linear(N_FEATURES, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        return self.layers((x - self.mean) / self.std).squeeze(1)


def bind_model(model, device):
    def save(dir_name, **kwargs):
        torch.save({"model": model.state_dict()}, os.path.join(dir_name, "model.pth"))

    def load(dir_name, **kwargs):
        state = torch.load(os.path.join(dir_name, "model.pth"), map_location=device)
        model.load_state_dict(state["model"])

    def infer(test_path, **kwargs):
        x = np.loadtxt(os.path.join(test_path, "test_data.csv"), delimiter=",", ndmin=2)
        model.eval()
        with torch.no_grad():
            logits = model(torch.tensor(x, dtype=torch.float32, device=device))
        return (logits > 0).long().cpu().tolist()

    nsml.bind(save=save, load=load, infer=infer)


def load_train(device):
    rows = np.loadtxt(os.path.join(DATASET_PATH, "train", "train_data.csv"), delimiter=",")
    x = torch.tensor(rows[:, :N_FEATURES], dtype=torch.float32, device=device)
    y = torch.tensor(rows[:, N_FEATURES], dtype=torch.float32, device=device)
    return x, y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", type=str, default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", type=str, default="0")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=0.01)
    config = parser.parse_args()

    torch.manual_seed(2020)
    device = torch.device("cuda" if GPU_NUM > 0 and torch.cuda.is_available() else "cpu")
    model = Net().to(device)
    bind_model(model, device)
    if config.pause:
        nsml.paused(scope=locals())
    if config.mode != "train":
        return

    x, y = load_train(device)
    order = torch.randperm(len(y))
    n_valid = len(y) // 5
    valid, train = order[:n_valid], order[n_valid:]
    model.mean.copy_(x[train].mean(0))
    model.std.copy_(x[train].std(0) + 1e-8)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    best = -1.0
    for epoch in range(config.epochs):
        model.train()
        losses = []
        for batch in torch.split(train[torch.randperm(len(train))], 32):
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            valid_acc = ((model(x[valid]) > 0).float() == y[valid]).float().mean()
        print("epoch %d: loss %.4f, valid acc %.4f" % (epoch, np.mean(losses), valid_acc))
        # As KHD code did: a tensor and a list go to nsml.report as they are.
        nsml.report(summary=True, step=epoch, epoch_total=config.epochs, train__loss=losses, valid__acc=valid_acc)
        nsml.save(epoch)
        if valid_acc.item() > best:
            best = valid_acc.item()
            nsml.save("best")


if __name__ == "__main__":
    main()
