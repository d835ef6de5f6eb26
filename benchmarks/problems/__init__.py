"""Benchmark problems, declared as data: each is its space, its trainable, its cost and its known optimum.

- :mod:`~benchmarks.problems.synthetic`: BoTorch's test functions with known optima (Branin ... Michalewicz-10).
- :mod:`~benchmarks.problems.taskset`: real learning curves of 1000 Adam settings on 12 TaskSet tasks (tabulated,
  answered by nearest neighbour).
- :mod:`~benchmarks.problems.digits`: the quickstart MLP on scikit-learn's digits, trained for real.
- :mod:`~benchmarks.problems.charlm`: a character-level transformer LM on Python's standard library, trained for
  real, and its cost-aware variant with width and steps in the space.

Problems are built by name (:func:`get_problem`) inside each run's process, so a run spec stays a small record that
pickles and serializes to JSON.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.problems import charlm, digits, synthetic, taskset
from benchmarks.problems.base import Problem

__all__ = ["PROBLEMS", "Problem", "get_problem", "problem_names"]

PROBLEMS: dict[str, Callable[[], Problem]] = {
    **synthetic.PROBLEMS,
    **taskset.PROBLEMS,
    **digits.PROBLEMS,
    **charlm.PROBLEMS,
}

_CACHE: dict[str, Problem] = {}


def get_problem(name: str) -> Problem:
    """The problem called ``name``, built once per process (TaskSet tables and text corpora load here)."""
    if name not in _CACHE:
        if name not in PROBLEMS:
            raise KeyError(f"unknown problem {name!r}; choose one of {sorted(PROBLEMS)}")
        _CACHE[name] = PROBLEMS[name]()
    return _CACHE[name]


def problem_names() -> list[str]:
    return sorted(PROBLEMS)
