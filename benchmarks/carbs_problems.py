"""A cheap synthetic cost-aware problem whose best learning rate moves as a known power law of the run's size.

Notation
--------
- ``w``: width (model size proxy), ``s``: training steps, ``b``: batch size; ``cost = w s b / 1e5`` virtual seconds
  (compute ~ parameters x tokens, with parameters ~ width here), from 0.5 to 26,000.
- ``D = s b / (1 + b / 64)``: effective tokens (batches beyond the critical size 64 help less).
- ``lr*(w, b, s) = 0.02 (w / 32)^-0.7 (b / 16)^0.5 (s / 1000)^-0.15``: the best learning rate (muP-like width
  exponent, square-root batch scaling, a mild decrease with longer training).
- ``L = 1.7 + 3.4 w^-0.35 + 11 D^-0.3 + 0.08 ln(lr / lr*)^2 + (warmup - 0.08)^2 + schedule offset + noise``:
  a Chinchilla-style loss (Hoffmann et al. 2022) with a quadratic basin in log learning rate; noise ``N(0, 0.01^2)``.
- Runs diverge (loss NaN, a failure) when ``lr > 20 lr*``, or ``lr > 6 lr*`` with warm-up below 0.05; a diverged
  run stops after 30 % of its cost.

The searched space has 6 parameters: lr (log float), width (log int), steps (log int), batch_size (powers of two,
a numeric choice), schedule (categorical), warmup (linear float). The (cost, loss) Pareto front needs the right
split of compute between width, steps and batch, and at each cost the right learning rate: what CARBS is for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hpo.space import Choice, Float, Int, Space

__all__ = ["ScalingLawProblem"]

_SCHEDULE = {"cosine": 0.0, "linear": 0.02, "constant": 0.08}


class ScalingLawProblem:
    """The synthetic problem above, as a :class:`~hpo.executors.simulated.SimulatedTrainable`.

    Example:
        >>> p = ScalingLawProblem(seed=0, noise=0.0)
        >>> c = {"lr": p.lr_star({"width": 32, "batch_size": 16, "steps": 1000}), "width": 32, "steps": 1000,
        ...      "batch_size": 16, "schedule": "cosine", "warmup": 0.08}
        >>> round(p.loss(c), 3), p.cost(c)
        (3.355, 5.12)
    """

    metric = "loss"
    mode = "min"
    cost_range = (32 * 100 * 16 / 1e5, 1024 * 10000 * 256 / 1e5)
    loss_ref = 4.0  # hypervolume reference loss: worse than any sensible run

    def __init__(self, seed: int = 0, noise: float = 0.01) -> None:
        self.space = Space(
            {
                "lr": Float(1e-4, 1.0, log=True),
                "width": Int(32, 1024, log=True),
                "steps": Int(100, 10000, log=True),
                "batch_size": Choice([16, 32, 64, 128, 256]),
                "schedule": Choice(["cosine", "linear", "constant"]),
                "warmup": Float(0.0, 0.3),
            }
        )
        self.noise = float(noise)
        self._rng = np.random.default_rng(seed)

    @staticmethod
    def lr_star(config: dict[str, Any]) -> float:
        w, b, s = config["width"], config["batch_size"], config["steps"]
        return 0.02 * (w / 32) ** -0.7 * (b / 16) ** 0.5 * (s / 1000) ** -0.15

    @staticmethod
    def cost(config: dict[str, Any]) -> float:
        return config["width"] * config["steps"] * config["batch_size"] / 1e5

    def diverges(self, config: dict[str, Any]) -> bool:
        ratio = config["lr"] / self.lr_star(config)
        return ratio > 20 or (ratio > 6 and config["warmup"] < 0.05)

    def loss(self, config: dict[str, Any]) -> float:
        """The noiseless loss (NaN when the run diverges)."""
        if self.diverges(config):
            return math.nan
        w, b, s = config["width"], config["batch_size"], config["steps"]
        tokens = s * b / (1 + b / 64)
        return (
            1.7
            + 3.4 * w**-0.35
            + 11.0 * tokens**-0.3
            + 0.08 * math.log(config["lr"] / self.lr_star(config)) ** 2
            + (config["warmup"] - 0.08) ** 2
            + _SCHEDULE[config["schedule"]]
        )

    def simulate(self, config: dict[str, Any], start_step: int, stop_step: int) -> tuple[list, float]:
        y = self.loss(config)
        if math.isnan(y):
            return [(1, {"loss": math.nan})], 0.3 * self.cost(config)
        return [(1, {"loss": y + self.noise * float(self._rng.standard_normal())})], self.cost(config)
