"""Quickstart on Ray Tune: hpo's GP-EI searcher and its ASHA with pause/resume, in an ordinary Ray Tune script.

The digits MLP of ``examples/quickstart`` written as a Ray Tune function trainable. Two lines differ from a plain
Ray Tune script: ``search_alg=HpoSearch("gp_ei")`` and ``scheduler=HpoScheduler("asha", ...)``. The trainable
reports a checkpoint every epoch, so the scheduler can pause a trial at a rung (freeing its worker) and resume it
later, from that checkpoint, when it is promoted. ``resumed_from`` in the results is the epoch a segment started
from: a promoted trial's curve shows 0, then 1, then 3 (the rungs), with every epoch reported once. The script
prints each trial's curve as the scheduler recorded it.

    python examples/ray_tune_quickstart.py            # about 2 minutes on 2 CPUs
"""

from __future__ import annotations

import os
import tempfile

import torch
from ray import tune
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from hpo.integrations.ray_tune import HpoScheduler, HpoSearch

PARAM_SPACE = {
    "lr": tune.loguniform(1e-4, 3e-1),
    "weight_decay": tune.loguniform(1e-6, 1e-1),
    "hidden": tune.lograndint(16, 257),
    "activation": tune.choice(["relu", "tanh"]),
    "batch_size": 64,  # constants pass through to every trial unchanged
    "epochs": 27,
}


def _data(seed: int = 0):
    x, y = load_digits(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x / 16.0, y, test_size=0.25, random_state=seed, stratify=y)
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return f(x_tr), torch.tensor(y_tr), f(x_va), torch.tensor(y_va)


def train(config: dict) -> None:
    """Train up to ``config["epochs"]``, reporting validation loss and a checkpoint every epoch."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_tr, y_tr, x_va, y_va = _data()
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[config["activation"]]
    model = nn.Sequential(nn.Linear(64, config["hidden"]), act(), nn.Linear(config["hidden"], 10))
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # resumed after a pause: continue exactly where the run stopped
        with checkpoint.as_directory() as d:
            state = torch.load(os.path.join(d, "state.pt"))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"]
    for epoch in range(start + 1, config["epochs"] + 1):
        gen = torch.Generator().manual_seed(epoch)
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
        with tempfile.TemporaryDirectory() as d:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch},
                       os.path.join(d, "state.pt"))
            tune.report(
                {"val_loss": val_loss, "val_acc": acc, "epoch": epoch, "resumed_from": start},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


def run(
    num_samples: int = 24,
    max_t: int = 27,
    searcher: str = "gp_ei",
    reduction_factor: float = 3,
    max_concurrent: int = 2,
    seed: int = 0,
    storage_path: str | None = None,
    verbose: int = 1,
    scheduler: HpoScheduler | None = None,
):
    """Run the sweep and return Ray Tune's ``ResultGrid`` (``scheduler`` replaces the default ASHA, e.g. to read
    its record of the curves afterwards)."""
    if scheduler is None:
        scheduler = HpoScheduler("asha", time_attr="epoch", max_t=max_t, reduction_factor=reduction_factor)
    tuner = tune.Tuner(
        train,
        param_space={**PARAM_SPACE, "epochs": max_t},
        tune_config=tune.TuneConfig(
            metric="val_loss",
            mode="min",
            num_samples=num_samples,
            search_alg=HpoSearch(searcher, seed=seed),
            scheduler=scheduler,
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,  # a resumed trial reuses a live worker instead of starting a process
        ),
        run_config=tune.RunConfig(storage_path=storage_path or tempfile.mkdtemp(), verbose=verbose),
    )
    return tuner.fit()


def segments(trial) -> list[int]:
    """The epochs an hpo Trial's segments started from (``[0, 1, 3]`` for a trial paused at rungs 1 and 3)."""
    return sorted({int(m["resumed_from"]) for _, m in trial.curve})


if __name__ == "__main__":
    # The scheduler keeps every result; read the curves from it rather than from Ray's result.json, which for a
    # resumed trial Ray restores from the last synced copy and may lack the epochs before the pause.
    scheduler = HpoScheduler("asha", time_attr="epoch", max_t=27, reduction_factor=3)
    results = run(scheduler=scheduler)
    best = results.get_best_result()
    print(f"best val_loss {best.metrics['val_loss']:.4f} with {best.config}")
    for t in sorted(scheduler.history(), key=lambda t: -t.last_step):
        print(f"trial {t.trial_id:2d}: {t.last_step:2d} epochs in segments from {segments(t)}, "
              f"val_loss {t.curve[-1][1]['val_loss']:.4f} ({t.status.value})")
