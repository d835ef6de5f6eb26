"""A virtual-clock executor: N workers, segment durations from the problem or from a seeded distribution.

The orchestrator, searcher and scheduler code is exactly what runs on Ray; only time is simulated. A segment is
computed when it is submitted and *ends* at ``now + duration`` on the virtual clock, and :meth:`wait` jumps the clock
to the next end. So asynchronous behaviour (which results a searcher has seen when it decides) is the same as in a
real run with those durations, and a thousand evaluations take seconds. Deterministic for a seed.

Duration distributions all have mean 1, as in the AEGiS paper's protocol (De Ath et al., UAI 2021, Sec. 5):
half-normal with scale sqrt(pi/2), exponential with rate 1, Pareto with shape 3 and scale 2/3.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hpo.checkpoint import CheckpointStore
from hpo.executors.base import Executor
from hpo.session import run_segment
from hpo.trial import Point, Segment, SegmentResult

__all__ = ["DURATIONS", "SimulatedExecutor", "SimulatedTrainable"]


@runtime_checkable
class SimulatedTrainable(Protocol):
    """A benchmark problem that knows its own curve and cost."""

    def simulate(self, config: dict[str, Any], start_step: int, stop_step: int) -> tuple[list[Point], float]:
        """Points for steps in ``(start_step, stop_step]`` and the segment's duration in virtual seconds."""
        ...


def _halfnormal(rng: np.random.Generator) -> float:
    return abs(rng.normal(0.0, math.sqrt(math.pi / 2)))


def _exponential(rng: np.random.Generator) -> float:
    return rng.exponential(1.0)


def _pareto(rng: np.random.Generator) -> float:
    return (2.0 / 3.0) * (1.0 + rng.pareto(3.0))


DURATIONS: dict[str, Callable[[np.random.Generator], float]] = {
    "halfnormal": _halfnormal,
    "exponential": _exponential,
    "pareto": _pareto,
    "constant": lambda rng: 1.0,
}


class SimulatedExecutor(Executor):
    """Runs segments instantly in-process and ends them on a virtual clock.

    Args:
        num_workers: simulated parallel workers (slots).
        duration: for trainables without ``simulate``: the name of a mean-1 distribution in :data:`DURATIONS`, or
            a function ``rng -> seconds``; a segment lasts one draw per step it reports.
        seed: seeds the duration draws.

    Example:
        >>> ex = SimulatedExecutor(num_workers=2, duration="constant")
        >>> ex.start(lambda config: config["x"] ** 2, metric="loss", store=None)
        >>> ex.submit(Segment(0, {"x": 3.0}, start_step=0, stop_step=1))
        >>> [(r.points[0][1]["loss"], ex.now()) for r in ex.wait()]
        [(9.0, 1.0)]
    """

    def __init__(
        self,
        num_workers: int = 1,
        duration: str | Callable[[np.random.Generator], float] = "exponential",
        seed: int = 0,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        if isinstance(duration, str) and duration not in DURATIONS:
            raise ValueError(f"unknown duration distribution {duration!r}; use one of {sorted(DURATIONS)}")
        self.num_slots = int(num_workers)
        self._draw = DURATIONS[duration] if isinstance(duration, str) else duration
        self._rng = np.random.default_rng(seed)
        self._clock = 0.0
        self._queue: list[tuple[float, int, SegmentResult]] = []
        self._seq = 0
        self.busy_time = 0.0
        self._fn: Callable[..., Any] | None = None

    def start(self, fn: Callable[[dict[str, Any]], Any], metric: str, store: CheckpointStore | None) -> None:
        self._fn, self._metric, self._store = fn, metric, store

    def submit(self, segment: Segment) -> None:
        if len(self._queue) >= self.num_slots:
            raise RuntimeError(f"all {self.num_slots} simulated workers are busy")
        if self._fn is None:
            raise RuntimeError("call start() before submit()")
        if isinstance(self._fn, SimulatedTrainable):
            try:
                points, duration = self._fn.simulate(dict(segment.config), segment.start_step, segment.stop_step)
                points, error = _until_diverged(tuple(points), self._metric)
                result = SegmentResult(segment, points=points, cost={"wall_seconds": float(duration)}, error=error)
            except Exception as e:  # the problem's own failure (e.g. a diverged tabulated curve)
                duration = self._draw(self._rng)
                result = SegmentResult(segment, error=f"{type(e).__name__}: {e}", cost={"wall_seconds": duration})
        else:
            result = run_segment(self._fn, segment, self._metric, self._store, worker={"simulated": True})
            duration = sum(self._draw(self._rng) for _ in range(max(len(result.points), 1)))
            result = SegmentResult(
                segment, result.points, {**result.cost, "wall_seconds": duration}, result.error, result.finished
            )
        self.busy_time += duration
        heapq.heappush(self._queue, (self._clock + duration, self._seq, result))
        self._seq += 1

    def wait(self, timeout: float | None = None) -> list[SegmentResult]:
        if not self._queue:
            return []
        end, _, result = self._queue[0]
        if timeout is not None and end > self._clock + timeout:
            self._clock += timeout
            return []
        heapq.heappop(self._queue)
        self._clock = max(self._clock, end)
        return [result]

    def now(self) -> float:
        return self._clock

    @property
    def num_running(self) -> int:
        return len(self._queue)

    def shutdown(self) -> None:
        self._queue.clear()


def _until_diverged(points: tuple, metric: str) -> tuple[tuple, str | None]:
    """A simulated curve up to and including its first non-finite value of ``metric``, and the failure it means
    (the same message :func:`hpo.report` gives a real trainable)."""
    for i, (step, metrics) in enumerate(points):
        v = metrics.get(metric)
        if v is not None and not math.isfinite(float(v)):
            return points[: i + 1], f"metric {metric!r} is {float(v)} at step {step}: the trial diverged"
    return points, None
