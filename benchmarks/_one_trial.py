"""Baseline (b) of engine_throughput.py: ONE trial in ONE fresh process, the way such studies are often run.

    python benchmarks/_one_trial.py DATA.npz TRIAL EPOCHS LR BATCH_SIZE HIDDEN THREADS DEVICE

Starts Python, imports torch, loads the data file, builds an ``nn.Sequential``, trains it with a shuffling
mini-batch ``DataLoader`` and Adam for EPOCHS epochs, prints the trial's test MAE as JSON. The parent
times the whole process (start-up and imports included).
"""

import json
import sys

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def main() -> None:
    path, trial, epochs, lr, batch_size, hidden, threads, device = sys.argv[1:9]
    torch.set_num_threads(int(threads))
    trial, epochs, batch_size = int(trial), int(epochs), int(batch_size)
    dev = torch.device(device)
    with np.load(path) as data:
        X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])
        train, test = torch.from_numpy(data["train"][trial]), torch.from_numpy(data["test"][trial])
    torch.manual_seed(trial)
    widths = [X.shape[1], *[int(h) for h in hidden.split(",")], 1]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(lr))
    loader = DataLoader(TensorDataset(X[train], y[train]), batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            optimizer.zero_grad()
            loss = ((model(xb).squeeze(-1) - yb) ** 2).mean()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        mae = float((model(X[test].to(dev)).squeeze(-1).cpu() - y[test]).abs().mean())
    print(json.dumps({"trial": trial, "mae": mae}))


if __name__ == "__main__":
    main()
