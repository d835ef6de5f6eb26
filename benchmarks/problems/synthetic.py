"""BoTorch's synthetic test functions with known optima, as in the AEGiS paper's benchmark.

Notation
--------
- ``d``: the function's dimension; the space has parameters ``x0 .. x{d-1}`` on the function's box.
- ``f(x)``: the noise-free value (``evaluate_true``), minimized; ``f* = optimal_value`` from BoTorch.

Evaluation times are not part of the problem: the simulated executor draws each evaluation's duration from a mean-1
half-normal, exponential or Pareto distribution (De Ath, Everson, Fieldsend, "Asynchronous epsilon-greedy Bayesian
optimisation", UAI 2021, Sec. 5), chosen per run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from botorch.test_functions import synthetic as bt

from benchmarks.problems.base import Problem
from hpo.space import Float, Space

__all__ = ["FUNCTIONS", "PROBLEMS", "SyntheticFunction"]

# name -> (BoTorch class, dimension); the six functions of the synthetic suite.
FUNCTIONS: dict[str, tuple[type[bt.SyntheticTestFunction], int]] = {
    "branin": (bt.Branin, 2),
    "hartmann6": (bt.Hartmann, 6),
    "ackley5": (bt.Ackley, 5),
    "levy10": (bt.Levy, 10),
    "styblinski_tang10": (bt.StyblinskiTang, 10),
    "michalewicz10": (bt.Michalewicz, 10),
}


class SyntheticFunction:
    """A BoTorch test function as a trainable: ``config -> {"loss": f(x)}``.

    Example:
        >>> f = SyntheticFunction("branin")
        >>> round(f({"x0": 3.14159265, "x1": 2.275})["loss"], 5)
        0.39789
    """

    def __init__(self, name: str) -> None:
        cls, dim = FUNCTIONS[name]
        self.name = name
        self.fn = cls(dim=dim) if cls is not bt.Branin else cls()
        self.names = [f"x{i}" for i in range(self.fn.dim)]

    def __call__(self, config: dict[str, Any]) -> dict[str, float]:
        x = torch.tensor([[float(config[n]) for n in self.names]], dtype=torch.double)
        return {"loss": float(self.fn.evaluate_true(x).item())}

    def space(self) -> Space:
        lows, highs = self.fn.bounds.tolist()
        return Space({n: Float(float(lo), float(hi)) for n, lo, hi in zip(self.names, lows, highs, strict=True)})

    @property
    def optimum(self) -> float:
        return float(self.fn.optimal_value)


def _problem(name: str) -> Callable[[], Problem]:
    def build() -> Problem:
        f = SyntheticFunction(name)
        return Problem(
            name=name,
            kind="synthetic",
            space=f.space(),
            make=lambda: SyntheticFunction(name),
            metric="loss",
            optimum=f.optimum,
            budget=100,
            budget_unit="trials",
            duration="exponential",
            notes=f"BoTorch {type(f.fn).__name__} (d={f.fn.dim}), noise-free, f* = {f.optimum}",
        )

    return build


PROBLEMS: dict[str, Callable[[], Problem]] = {name: _problem(name) for name in FUNCTIONS}
