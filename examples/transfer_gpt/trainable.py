"""The GPT of ``model.py`` as an hpo trainable: validation loss every ``eval_every`` steps, with a checkpoint.

``train(config)`` is what the sweep files here name as their entrypoint. It reports ``val_loss`` (nats per
character on fixed validation windows) every ``eval_every`` steps together with a checkpoint, so ASHA or
freeze-thaw can pause a trial at any report, free its worker, and resume it later from that point on any
worker; ``start_step`` in each report is the step its segment resumed from, so the curves show the pauses. A
resumed run continues bit for bit: the checkpoint holds the model, the optimizer(s) and the data order.

Config keys (constants in a sweep file unless searched):

- shape and parameterization: ``width``, ``depth`` (the shape trained), ``base_width``, ``base_depth`` (the
  shape the hyperparameters refer to; default: the shape trained, as in a proxy sweep), ``parameterization``
  (``sp``, ``mup``, ``depth_mup``, ``completep``), ``optimizer`` (``adamw`` or ``muon``);
- base hyperparameters (``hpo.transfer`` scales them per parameter group for the shape trained): ``lr``,
  ``weight_decay``, ``eps``; ``beta2`` (AdamW, and the Adam groups under Muon), ``momentum`` (Muon);
  ``warmup_fraction`` (linear warm-up over that fraction of the steps, then cosine decay to 10%);
- budget: ``step`` (the training steps of the full run: the sweep's fidelity), ``batch_size``, ``block_size``,
  ``eval_every``, ``eval_batches``, ``seed``.

Cost: each report adds ``flops`` (training and evaluation, ``6N + 6 L T n`` per trained token and a third of
that per evaluated token, Kaplan et al. 2020, with ``N`` the non-embedding parameters) to the trial's cost next
to its measured wall time, so sweeps at different shapes compare in compute.

``run(config)`` trains the same model outside a sweep (no pauses) and returns its curve and cost; the check
script uses it at the target shape.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

import hpo
from examples.transfer_gpt.model import GPT, CharCorpus, GPTConfig, get_batch, load_corpus
from hpo.transfer import split_groups

__all__ = ["DEFAULTS", "corpus", "flops_per_step", "loop", "run", "train"]

DEFAULTS: dict[str, Any] = {
    "parameterization": "completep",
    "optimizer": "adamw",
    "lr": 2.0**-7,
    "weight_decay": 0.0,
    "eps": 1e-8,
    "beta2": 0.95,
    "momentum": 0.95,
    "warmup_fraction": 0.1,
    "step": 300,
    "batch_size": 16,
    "block_size": 64,
    "eval_every": 25,
    "eval_batches": 4,
    "eval_batch_size": 32,
    "seed": 0,
}


@functools.lru_cache(maxsize=1)
def corpus() -> CharCorpus:
    """The standard-library character corpus, loaded once per process."""
    return load_corpus()


def _full(config: Mapping[str, Any]) -> dict[str, Any]:
    c = {**DEFAULTS, **config}
    for key in ("width", "depth"):
        if key not in c:
            raise ValueError(f"config has no {key!r}; add the model shape, e.g. width: 32, depth: 2")
    c.setdefault("base_width", c["width"])
    c.setdefault("base_depth", c["depth"])
    if c["optimizer"] not in ("adamw", "muon"):
        raise ValueError(f"optimizer {c['optimizer']!r}: this example trains with 'adamw' or 'muon'")
    return c


def _gpt_config(c: Mapping[str, Any], vocab_size: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=vocab_size,
        n_embd=int(c["width"]),
        n_layer=int(c["depth"]),
        block_size=int(c["block_size"]),
        parameterization=str(c["parameterization"]),
        base_width=int(c["base_width"]),
        base_depth=int(c["base_depth"]),
    )


def flops_per_step(config: Mapping[str, Any], vocab_size: int | None = None) -> tuple[float, float]:
    """Training FLOPs of one step and evaluation FLOPs of one evaluation, for ``config``'s shape.

    ``6 N + 6 L T n`` per trained token and ``2 N + 2 L T n`` per evaluated token (Kaplan et al. 2020, Table 1),
    ``N`` the non-embedding parameters (blocks, final norm, head), ``L`` depth, ``T`` context, ``n`` width.
    """
    c = _full(config)
    n, L, T = int(c["width"]), int(c["depth"]), int(c["block_size"])
    V = vocab_size or corpus().vocab_size
    mlp = int(GPTConfig.__dataclass_fields__["mlp_ratio"].default)
    N = L * (4 * n * n + 2 * mlp * n * n + 4 * n) + 2 * n + n * V
    per_token = 2 * N + 2 * L * T * n
    train = 3 * per_token * int(c["batch_size"]) * T
    evaluate = per_token * int(c["eval_batches"]) * int(c["eval_batch_size"]) * T
    return float(train), float(evaluate)


def _optimizers(model: GPT, c: Mapping[str, Any]) -> list[torch.optim.Optimizer]:
    betas = (0.9, float(c["beta2"]))
    groups = model.param_groups(float(c["lr"]), float(c["weight_decay"]), float(c["eps"]), c["optimizer"])
    if c["optimizer"] == "adamw":
        return [torch.optim.AdamW(groups, betas=betas)]
    parts = split_groups(groups)
    # Muon for the hidden matrices (its lr and weight decay from the muP rule, adjust_lr_fn in each group);
    # AdamW for embeddings, head, norms: the same base lr, as the 'match_rms_adamw' update scale intends.
    return [
        torch.optim.Muon(parts["muon"], momentum=float(c["momentum"])),
        torch.optim.AdamW(parts["adamw"], betas=betas),
    ]


def _lr_factor(step: int, steps: int, warmup_fraction: float) -> float:
    """Linear warm-up over ``warmup_fraction * steps`` steps, then cosine decay to 10% (as ``model.train``)."""
    warmup = max(1, int(warmup_fraction * steps))
    if step < warmup:
        return (step + 1) / warmup
    return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


@torch.no_grad()
def _evaluate(model: GPT, data: CharCorpus, c: Mapping[str, Any]) -> float:
    model.eval()
    gen = torch.Generator().manual_seed(10_000)  # the same validation windows at every evaluation and shape
    losses = [
        model(*get_batch(data.val, int(c["block_size"]), int(c["eval_batch_size"]), gen))[1].item()
        for _ in range(int(c["eval_batches"]))
    ]
    model.train()
    value = sum(losses) / len(losses)
    return value if math.isfinite(value) else float("inf")


def loop(
    config: Mapping[str, Any],
    state: Mapping[str, Any] | None,
    on_eval: Callable[[int, float, float, Callable[[], dict[str, Any]]], None],
) -> None:
    """Train from ``state`` (a checkpoint ``make_checkpoint`` made, or None) to ``config['step']``.

    Calls ``on_eval(step, val_loss, flops, make_checkpoint)`` every ``eval_every`` steps and at the last step,
    ``flops`` being the compute since the previous call and ``make_checkpoint()`` the state to resume from
    (model, optimizers, data order, step). A diverged run calls it once with ``inf`` and stops. Any sweep
    framework's trainable is a few lines around it (``train`` here for hpo, ``ray_tune.py`` for Ray Tune).
    """
    c = _full(config)
    data = corpus()
    torch.manual_seed(int(c["seed"]))
    model = GPT(_gpt_config(c, data.vocab_size))
    opts = _optimizers(model, c)
    base_lrs = [[g["lr"] for g in o.param_groups] for o in opts]
    data_gen = torch.Generator().manual_seed(int(c["seed"]))
    start = 0
    if state is not None:  # resumed after a pause: continue exactly where the paused run stopped
        model.load_state_dict(state["model"])
        for o, s in zip(opts, state["opts"], strict=True):
            o.load_state_dict(s)
        data_gen.set_state(state["data_gen"])
        start = int(state["step"])
    steps, every = int(c["step"]), int(c["eval_every"])
    train_flops, eval_flops = flops_per_step(c, data.vocab_size)
    spent = 0.0
    model.train()
    for step in range(start, steps):
        factor = _lr_factor(step, steps, float(c["warmup_fraction"]))
        for o, lrs in zip(opts, base_lrs, strict=True):
            for g, lr in zip(o.param_groups, lrs, strict=True):
                g["lr"] = lr * factor
        x, y = get_batch(data.train, int(c["block_size"]), int(c["batch_size"]), data_gen)
        _, loss = model(x, y)
        spent += train_flops
        done = step + 1
        if not torch.isfinite(loss):
            on_eval(done, float("inf"), spent, dict)
            return
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()
        if done % every == 0 or done == steps:
            val = _evaluate(model, data, c)
            spent += eval_flops

            def make_checkpoint(done: int = done) -> dict[str, Any]:
                return {
                    "model": model.state_dict(),
                    "opts": [o.state_dict() for o in opts],
                    "data_gen": data_gen.get_state(),
                    "step": done,
                }

            on_eval(done, val, spent, make_checkpoint)
            spent = 0.0
            if not math.isfinite(val):
                return


def train(config: dict[str, Any]) -> None:
    """The hpo trainable: reports ``val_loss`` and a checkpoint every ``eval_every`` steps."""
    torch.set_num_threads(1)
    state = hpo.get_checkpoint()
    start = 0 if state is None else int(state["step"])

    def on_eval(step: int, val: float, flops: float, make_checkpoint: Callable[[], dict[str, Any]]) -> None:
        hpo.report(
            {"val_loss": val, "start_step": float(start)},
            step=step,
            checkpoint=make_checkpoint() if math.isfinite(val) else None,
            cost={"flops": flops},
        )

    loop(config, state, on_eval)


def run(config: Mapping[str, Any]) -> dict[str, Any]:
    """Train ``config`` start to finish outside a sweep: ``{"curve": [(step, val_loss)], "val_loss": last,
    "flops": total, "wall_seconds": ...}`` (``val_loss`` is ``inf`` for a run that diverged)."""
    curve: list[tuple[int, float]] = []
    total = [0.0]

    def on_eval(step: int, val: float, flops: float, _: Callable[[], dict[str, Any]]) -> None:
        curve.append((step, val))
        total[0] += flops

    t0 = time.perf_counter()
    loop(config, None, on_eval)
    last = curve[-1][1] if curve else float("inf")
    return {"curve": curve, "val_loss": last, "flops": total[0], "wall_seconds": time.perf_counter() - t0}
