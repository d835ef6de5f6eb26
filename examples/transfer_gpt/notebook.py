# %% [markdown]
# # Tune small, transfer large, from Python
#
# The workflow of `docs/transfer_guide.md` as notebook cells (`# %%`; run them in VS Code or Jupytext, or the
# whole file with `python -m examples.transfer_gpt.notebook`; `--quick` runs the smallest version in about a
# minute). The steps:
#
# 1. sweep the AdamW hyperparameters of a small GPT (the *proxy*, width 32, depth 2) in CompleteP, with random
#    search and ASHA pausing and resuming trials from their checkpoints, on the local Ray;
# 2. transfer the winner to the target shape (width 128, depth 4) with `hpo.transfer`;
# 3. refine its learning rate on the proxy (a small grid, two seeds) and transfer the refined value;
# 4. train the target with it, and with a small learning-rate grid around it.

# %%
from __future__ import annotations

import argparse
import math
from pathlib import Path

import hpo
from examples.transfer_gpt.check import load_transferred
from examples.transfer_gpt.refine import refine
from examples.transfer_gpt.trainable import run, train
from hpo.tune import transfer_sweep

parser = argparse.ArgumentParser(prog="python -m examples.transfer_gpt.notebook")
parser.add_argument("--quick", action="store_true", help="the smallest version (16x1 -> 32x2, 20 steps)")
parser.add_argument("--directory", default="runs/transfer_gpt/notebook")
args, _ = parser.parse_known_args()

BASE, TARGET = {"width": 32, "depth": 2}, {"width": 128, "depth": 4}
CONSTANTS = {"parameterization": "completep", "optimizer": "adamw", "batch_size": 16, "block_size": 64,
             "eval_every": 25}
STEPS, RUNG, TRIALS = 300, 25, 48
if args.quick:
    BASE, TARGET = {"width": 16, "depth": 1}, {"width": 32, "depth": 2}
    CONSTANTS.update(batch_size=4, block_size=32, eval_every=10, eval_batches=1, eval_batch_size=8)
    STEPS, RUNG, TRIALS = 20, 10, 6

# %% [markdown]
# ## 1. The proxy sweep
# The search space holds the base hyperparameters; the constants tell the trainable its shape and
# parameterization; `transfer=` stores the base shape with the sweep, for step 2.

# %%
space = hpo.Space(
    {
        "lr": hpo.Float(2.0**-12, 2.0**-3, log=True),
        "weight_decay": hpo.Float(1e-3, 1.0, log=True),
        "beta2": hpo.Float(0.9, 0.999),
        "warmup_fraction": hpo.Float(0.0, 0.3),
    },
    fidelity=hpo.Fidelity("step", RUNG, STEPS),
    constants={**BASE, **CONSTANTS},
)
result = hpo.run(
    train,
    space,
    metric="val_loss",
    mode="min",
    searcher={"name": "random", "seed": 0},
    scheduler={"name": "asha", "reduction_factor": 3},
    resources={"num_cpus": 1},
    max_concurrent=1,
    max_trials=TRIALS,
    directory=args.directory,
    transfer={"base": BASE, "parameterization": "completep", "optimizer": "adamw"},
    display=False,
)
print(f"proxy: best val_loss {result.best_value:.4f} with {result.best_config}")

# %% [markdown]
# ## 2. Transfer
# `transfer_sweep` is what `hpo-tune transfer DIR --target width=128,depth=4` runs: the best trial trained to
# the full budget, its hyperparameters scaled per parameter group for the target shape.

# %%
t = transfer_sweep(args.directory, TARGET)
print(t["describe"])
target_config = t["config"]  # base values + target shape + base shape: the GPT applies the rules itself

# %% [markdown]
# ## 3. Refine the learning rate on the proxy
# ASHA trains few trials to the full budget, and on a flat learning-rate curve the best of those few can sit
# octaves from the proxy's own optimum. `refine` trains the winner at the base shape with base lr `2^k` (two
# seeds), and transfers the `k` with the lowest mean loss again (`hpo-tune transfer ... --set lr=2^k`).

# %%
KS = [-7.0, -5.0] if args.quick else [float(k) for k in range(-9, -2)]
refined = refine(args.directory, KS, [0, 1])
print(f"refined base lr 2^{refined['best_k']:g} (the sweep's winner: 2^{refined['winner_log2_lr']:.2f})")
target_config = load_transferred(args.directory)["config"]

# %% [markdown]
# ## 4. Train the target with the transferred hyperparameters and a grid around them

# %%
losses = {}
for k in (-1, 0, 1):
    config = {**target_config, "lr": target_config["lr"] * 2.0**k}
    losses[k] = run(config)["val_loss"]
    print(f"target {TARGET}, lr = transferred x 2^{k:+d}: val_loss {losses[k]:.4f}")
best_k = min(losses, key=losses.get)
print(f"transferred lr: {losses[0]:.4f}; best of the grid {losses[best_k]:.4f} at 2^{best_k:+d} "
      f"(gap {100 * (losses[0] / losses[best_k] - 1):+.2f}%)")
assert all(math.isfinite(v) for v in losses.values()), "a target run diverged"
Path(args.directory, "notebook_losses.txt").write_text(
    "".join(f"{k} {v}\n" for k, v in sorted(losses.items()))
)
