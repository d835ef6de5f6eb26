"""Quickstart on Optuna: hpo's GP-EI as the sampler and the freeze-thaw curve model as the pruner.

The digits MLP of ``examples/quickstart`` as an ordinary Optuna objective. Two lines differ from a plain Optuna
script: ``sampler=HpoSampler("gp_ei", ...)`` and ``pruner=HpoFreezeThawPruner(max_step=EPOCHS)``. The pruner stops
a run when the learning-curve model gives it under a 5% chance to end better than the best finished run; Optuna
cannot pause and resume, so a pruned run is not thawed later (use ``hpo.run`` or the Ray Tune plug-in for that).

    python examples/optuna_quickstart.py            # about a minute on 2 CPUs
"""

from __future__ import annotations

import optuna
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from hpo.integrations.optuna import HpoFreezeThawPruner, HpoSampler

EPOCHS = 15


def _data(seed: int = 0):
    x, y = load_digits(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x / 16.0, y, test_size=0.25, random_state=seed, stratify=y)
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return f(x_tr), torch.tensor(y_tr), f(x_va), torch.tensor(y_va)


DATA = None


def objective(trial: optuna.Trial) -> float:
    global DATA
    DATA = DATA or _data()
    x_tr, y_tr, x_va, y_va = DATA
    lr = trial.suggest_float("lr", 1e-4, 3e-1, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    hidden = trial.suggest_int("hidden", 16, 256, log=True)
    activation = trial.suggest_categorical("activation", ["relu", "tanh"])
    torch.manual_seed(0)
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    model = nn.Sequential(nn.Linear(64, hidden), act(), nn.Linear(hidden, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    val_loss = float("nan")
    for epoch in range(1, EPOCHS + 1):
        gen = torch.Generator().manual_seed(epoch)
        model.train()
        for idx in torch.randperm(len(x_tr), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_loss = nn.functional.cross_entropy(model(x_va), y_va).item()
        trial.report(val_loss, epoch - 1)  # Optuna counts steps from 0
        if trial.should_prune():
            raise optuna.TrialPruned()
    return val_loss


def run(n_trials: int = 30, searcher: str = "gp_ei", seed: int = 0, pruner: optuna.pruners.BasePruner | None = None
        ) -> optuna.Study:
    """Run the study and return it."""
    study = optuna.create_study(
        direction="minimize",
        sampler=HpoSampler(searcher, seed=seed),
        pruner=pruner or HpoFreezeThawPruner(max_step=EPOCHS, n_startup_trials=5, n_warmup_steps=3, seed=seed),
    )
    study.optimize(objective, n_trials=n_trials)
    return study


if __name__ == "__main__":
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = run()
    states = [t.state.name for t in study.trials]
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    print(f"best val_loss {study.best_value:.4f} with {study.best_params}")
    print(f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned; "
          f"{epochs} of {EPOCHS * len(study.trials)} epochs trained")
