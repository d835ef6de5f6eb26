"""Tune small, transfer large, in an ordinary Ray Tune script: hpo's searcher and pausing ASHA as plug-ins.

The proxy sweep of ``sweep_adamw.yaml`` written for Ray Tune: ``search_alg=HpoSearch("random")`` and
``scheduler=HpoScheduler("asha", ...)`` are the only hpo pieces in the sweep; the trainable reports a Ray Tune
checkpoint at every evaluation, so ASHA can pause a trial (freeing its worker) and resume it later from there.
Then the winner's learning rate is refined on the proxy (``examples.transfer_gpt.refine.refine_lr``: base lr
``2^k``, two seeds), ``hpo.transfer.transfer_hparams`` carries it to the target shape, and the target trains with it.

    python -m examples.transfer_gpt.ray_tune            # 48 proxy trials + one target run: ~15 min on 2 CPUs
    python -m examples.transfer_gpt.ray_tune --quick    # the smallest version: about a minute
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import torch
from ray import tune

from examples.transfer_gpt.refine import refine_lr
from examples.transfer_gpt.trainable import loop, run
from hpo.integrations.ray_tune import HpoScheduler, HpoSearch
from hpo.transfer import transfer_hparams

BASE = {"width": 32, "depth": 2}
TARGET = {"width": 128, "depth": 4}
PARAM_SPACE: dict[str, Any] = {
    "lr": tune.loguniform(2.0**-12, 2.0**-3),
    "weight_decay": tune.loguniform(1e-3, 1.0),
    "beta2": tune.uniform(0.9, 0.999),
    "warmup_fraction": tune.uniform(0.0, 0.3),
    # constants pass through to every trial unchanged
    "parameterization": "completep",
    "optimizer": "adamw",
    "batch_size": 16,
    "block_size": 64,
    "eval_every": 25,
    "step": 300,
}
QUICK: dict[str, Any] = {"batch_size": 4, "block_size": 32, "eval_every": 10, "eval_batches": 1,
                         "eval_batch_size": 8, "step": 20}


def train(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``val_loss`` and a checkpoint every ``eval_every`` steps."""
    torch.set_num_threads(1)
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # resumed after a pause: continue exactly where the run stopped
        with checkpoint.as_directory() as d:
            state = torch.load(os.path.join(d, "state.pt"), weights_only=False)
    start = 0 if state is None else int(state["step"])

    def on_eval(step: int, val: float, flops: float, make_checkpoint) -> None:
        metrics = {"val_loss": val, "step": step, "start_step": start, "flops": flops}
        if not math.isfinite(val):
            tune.report({**metrics, "val_loss": 1e3})  # diverged: a bad, finite value that ASHA can rank
            return
        with tempfile.TemporaryDirectory() as d:
            torch.save(make_checkpoint(), os.path.join(d, "state.pt"))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    loop(config, state, on_eval)


def sweep(
    base: dict[str, int] = BASE,
    overrides: dict[str, Any] | None = None,
    num_samples: int = 48,
    grace_period: int = 25,
    max_concurrent: int = 1,
    seed: int = 0,
    storage_path: str | None = None,
) -> tuple[dict[str, Any], float]:
    """Run the proxy sweep on Ray Tune; return the best config trained to the full budget and its loss."""
    space = {**PARAM_SPACE, **(overrides or {}), **base}
    max_t = int(space["step"])
    tuner = tune.Tuner(
        train,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="val_loss",
            mode="min",
            num_samples=num_samples,
            search_alg=HpoSearch("random", seed=seed),
            scheduler=HpoScheduler("asha", time_attr="step", max_t=max_t, grace_period=grace_period,
                                   reduction_factor=3),
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=storage_path or tempfile.mkdtemp(), verbose=0),
    )
    results = tuner.fit()
    full = [r for r in results if r.metrics and r.metrics.get("step") == max_t]
    if not full:
        raise RuntimeError("no trial reached the full budget; raise num_samples")
    best = min(full, key=lambda r: r.metrics["val_loss"])
    return dict(best.config), float(best.metrics["val_loss"])


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m examples.transfer_gpt.ray_tune", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the smallest version (16x1 -> 32x2, 20 steps, 6 trials)")
    a = p.parse_args(argv)
    base, target, overrides, n, grace = BASE, TARGET, {}, 48, 25
    if a.quick:
        base, target, overrides, n, grace = {"width": 16, "depth": 1}, {"width": 32, "depth": 2}, QUICK, 6, 10
    config, value = sweep(base, overrides, num_samples=n, grace_period=grace)
    print(f"proxy {base}: best val_loss {value:.4f} with lr {config['lr']:.4g}, weight_decay "
          f"{config['weight_decay']:.3g}, beta2 {config['beta2']:.4f}, warmup {config['warmup_fraction']:.3f}")
    # Refine the learning rate on the proxy (examples/transfer_gpt/refine.py): base lr 2^k, two seeds.
    ks = [-7.0, -5.0] if a.quick else [float(k) for k in range(-9, -2)]
    best_k, _, _ = refine_lr({**config, **base}, ks, [0, 1])
    print(f"refined base lr 2^{best_k:g} (the sweep's winner: 2^{math.log2(config['lr']):.2f})")
    config = {**config, "lr": 2.0**best_k}
    t = transfer_hparams(config, base, target, config["parameterization"], optimizer=config["optimizer"])
    print(t.describe())
    # The GPT applies hpo.transfer's rules itself from the base values, the base shape and its own shape.
    target_config = {**config, **target, "base_width": base["width"], "base_depth": base["depth"]}
    result = run(target_config)
    print(f"target {target}: val_loss {result['val_loss']:.4f} with the transferred hyperparameters")


if __name__ == "__main__":
    main()
