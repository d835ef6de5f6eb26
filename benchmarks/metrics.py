"""What a benchmark run measures: regret traces, the (cost, loss) hypervolume, suggestion latency, utilization.

Notation
--------
- A run's **trace** has one entry per segment end (in the order the simulated clock delivers them):
  ``clock`` (virtual seconds), ``cost`` (the trials' summed cost so far: steps for TaskSet, seconds for real
  problems), ``evals`` (trials finished so far: completed, stopped or failed), ``best`` (the lowest value of the
  metric reported so far, at any step, by any trial; NaN before the first finite report).
- ``regret = best - f*``; ``log10 regret`` is floored at :data:`REGRET_FLOOR` (a run that finds ``f*`` exactly,
  e.g. the best tabulated TaskSet setting, would otherwise give ``-inf``).
- ``HV``: hypervolume of the non-dominated set of ``(log10 cost, f)`` points (both minimized) against a fixed
  reference point ``r`` per problem; computed with BoTorch's :class:`~botorch.utils.multi_objective.hypervolume.
  Hypervolume` on the negated points (BoTorch maximizes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from botorch.utils.multi_objective.hypervolume import Hypervolume
from botorch.utils.multi_objective.pareto import is_non_dominated

from hpo.history import History
from hpo.orchestrator import utilization
from hpo.searcher import Searcher
from hpo.trial import TrialStatus

__all__ = [
    "REGRET_FLOOR",
    "TimedSearcher",
    "hypervolume",
    "log10_regret",
    "pareto_front",
    "trace",
    "utilization",
    "value_at",
]

REGRET_FLOOR = 1e-8
_ENDS = ("segment_ended", "paused", "completed", "stopped", "failed")


class TimedSearcher(Searcher):
    """Wraps a searcher and records the wall time of each call, against the number of finished trials it saw.

    ``calls`` holds ``(n_finished, n_suggested, seconds)`` per call of ``suggest`` or ``suggest_batch`` (a batch is
    one call: a searcher that proposes jointly is not charged per point).

    Example:
        >>> from hpo.space import Space, Float
        >>> from searchers.random import RandomSearcher
        >>> space = Space({"x": Float(0, 1)})
        >>> s = TimedSearcher(RandomSearcher(space))
        >>> _ = s.suggest_batch(History(space, "loss"), 3)
        >>> [(n, k) for n, k, _ in s.calls]
        [(0, 3)]
    """

    def __init__(self, inner: Searcher) -> None:
        super().__init__(inner.space, inner.seed)
        self.inner = inner
        self.calls: list[tuple[int, int, float]] = []

    @staticmethod
    def _finished(history: History) -> int:
        return sum(1 for t in history if t.status.is_finished)

    def suggest(self, history: History) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        out = self.inner.suggest(history)
        self.calls.append((self._finished(history), int(out is not None), time.perf_counter() - t0))
        return out

    def suggest_batch(self, history: History, n: int) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        out = self.inner.suggest_batch(history, n)
        self.calls.append((self._finished(history), len(out), time.perf_counter() - t0))
        return out

    def is_finished(self, history: History) -> bool:
        return self.inner.is_finished(history)


def trace(history: History, events: list[dict[str, Any]]) -> dict[str, list[float]]:
    """The run's trace (see the module notation) from its final history and its storage's event log."""
    out: dict[str, list[float]] = {"clock": [], "cost": [], "evals": [], "best": []}
    best, cost, evals = math.inf, 0.0, 0
    for e in events:
        if e["kind"] not in _ENDS or e["trial_id"] is None or not e["data"]:
            continue
        d = e["data"]
        t = history[e["trial_id"]]
        lo, hi = d.get("start_step", 0), d.get("last_step", 0)
        for step, metrics in t.curve:
            if lo < step <= hi and history.metric in metrics:
                y = history.sign(float(metrics[history.metric]))
                if math.isfinite(y):
                    best = min(best, y)
        cost += float(d.get("cost", {}).get("wall_seconds", 0.0))
        if e["kind"] in ("completed", "stopped", "failed"):
            evals += 1
        out["clock"].append(float(d.get("clock", math.nan)))
        out["cost"].append(cost)
        out["evals"].append(evals)
        out["best"].append(history.sign(best) if math.isfinite(best) else math.nan)
    return out


def log10_regret(best: float | np.ndarray, optimum: float) -> np.ndarray:
    """``log10(max(best - f*, REGRET_FLOOR))``; NaN where nothing was observed yet."""
    r = np.asarray(best, dtype=float) - optimum
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(r), np.nan, np.log10(np.maximum(r, REGRET_FLOOR)))


def value_at(xs: Sequence[float], ys: Sequence[float], grid: Sequence[float]) -> np.ndarray:
    """A step function's value at each grid point: ``ys[i]`` for the last ``xs[i] <= x``; NaN before ``xs[0]``."""
    xs_a, ys_a = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    idx = np.searchsorted(xs_a, np.asarray(grid, dtype=float), side="right") - 1
    out = np.full(len(idx), np.nan)
    ok = idx >= 0
    out[ok] = ys_a[idx[ok]]
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-dominated ``(cost, f)`` points (both minimized), sorted by cost."""
    if not points:
        return []
    y = -torch.tensor(points, dtype=torch.double)
    mask = is_non_dominated(y, deduplicate=True)
    return sorted(tuple(map(float, p)) for p, m in zip(points, mask.tolist(), strict=True) if m)


def hypervolume(points: Sequence[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Hypervolume dominated by ``(log10 cost, f)`` points (both minimized) up to the reference ``ref``.

    Points that do not dominate ``ref`` add nothing (BoTorch's ``Hypervolume`` clips them).
    """
    inside = [p for p in points if p[0] < ref[0] and p[1] < ref[1]]
    if not inside:
        return 0.0
    y = -torch.tensor(inside, dtype=torch.double)
    front = y[is_non_dominated(y, deduplicate=True)]
    return float(Hypervolume(-torch.tensor(ref, dtype=torch.double)).compute(front))


def cost_points(history: History, cost_metric: str) -> list[tuple[float, float, float]]:
    """``(clock order index, log10 cost, f)`` for each completed trial that reported ``cost_metric``."""
    out = []
    for t in history:
        if t.status is not TrialStatus.COMPLETED or not t.curve:
            continue
        m = t.curve[-1][1]
        if cost_metric in m and history.metric in m and math.isfinite(m[history.metric]) and m[cost_metric] > 0:
            out.append((float(t.trial_id), math.log10(m[cost_metric]), float(m[history.metric])))
    return out
