"""The quickstart's digits MLP, reporting also the epoch it resumed from, so that a sweep's curves show its pauses.

A paused trial holds no worker; when freeze-thaw thaws it, its next segment starts on whichever worker is free,
loads the checkpoint saved at the pause, and goes on training from that epoch (``start_epoch`` in the reports).
"""

from __future__ import annotations

import os

import torch
from torch import nn

import hpo
from examples.quickstart.train import _data


def train(config: dict) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_tr, y_tr, x_va, y_va = _data()
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[config["activation"]]
    model = nn.Sequential(nn.Linear(64, config["hidden"]), act(), nn.Linear(config["hidden"], 10))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                          weight_decay=config["weight_decay"])
    start = 0
    state = hpo.get_checkpoint()
    if state is not None:  # thawed: continue exactly where the paused run stopped
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
        hpo.report(
            {"val_loss": val_loss, "start_epoch": float(start), "pid": float(os.getpid())},
            step=epoch,
            checkpoint={"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch},
        )
