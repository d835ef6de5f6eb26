"""Quickstart: a small MLP on scikit-learn's bundled digits, reporting validation loss every epoch.

Swept by ``sweep.yaml`` (random search + ASHA with pause/resume) on the local Ray:

    hpo-tune examples/quickstart/sweep.yaml

The trainable checkpoints every epoch, so ASHA can pause it at a rung and resume it later, on any worker.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import hpo


def _data(seed: int = 0):
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return f(x_tr), torch.tensor(y_tr), f(x_va), torch.tensor(y_va)


def train(config: dict) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_tr, y_tr, x_va, y_va = _data()
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[config["activation"]]
    model = nn.Sequential(nn.Linear(64, config["hidden"]), act(), nn.Linear(config["hidden"], 10))
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    start = 0
    state = hpo.get_checkpoint()
    if state is not None:  # resumed: continue exactly where the paused run stopped
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"]
    gen = torch.Generator().manual_seed(start)
    for epoch in range(start + 1, config["epoch"] + 1):
        model.train()
        for idx in torch.randperm(len(x_tr), generator=gen).split(config["batch_size"]):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_va)
            val_loss = nn.functional.cross_entropy(logits, y_va).item()
            acc = (logits.argmax(1) == y_va).float().mean().item()
        hpo.report(
            {"val_loss": val_loss, "val_acc": acc},
            step=epoch,
            checkpoint={"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch},
        )
