"""Trials, their learning curves and costs, and the segments they run in.

Notation
--------
- ``curve``: the points a trial reported, ``((step, metrics), ...)`` with strictly increasing ``step``.
- ``segment``: one stretch of training of one trial, from its last checkpoint up to ``stop_step``. Pausing a trial
  is not scheduling its next segment; resuming is scheduling it, on any worker.
- ``cost``: what a trial has consumed, ``{"wall_seconds": ..., **user costs}`` (FLOPs, tokens, ...).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Point", "Segment", "SegmentResult", "Trial", "TrialStatus"]

Point = tuple[int, Mapping[str, float]]


class TrialStatus(str, enum.Enum):
    """Where a trial is in its life.

    ``PENDING`` (created, waiting for a worker) -> ``RUNNING`` -> one of ``PAUSED`` (may resume), ``COMPLETED``
    (reached its budget or returned), ``STOPPED`` (ended early by the scheduler) or ``FAILED`` (raised, or
    reported a non-finite metric).
    """

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def is_finished(self) -> bool:
        return self in (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.STOPPED)


@dataclass(frozen=True)
class Trial:
    """An immutable record of one trial. Updates make a new record (``dataclasses.replace``).

    Attributes:
        trial_id: unique within a sweep, increasing in creation order.
        config: the full config passed to the trainable (constants and the fidelity budget included).
        status: see :class:`TrialStatus`.
        curve: reported ``(step, metrics)`` points, steps strictly increasing.
        cost: consumed resources, ``wall_seconds`` plus any costs the trainable reported.
        error: the one-line reason (and traceback) of a failure, else None.
        created_at: clock time of creation (wall or simulated).
    """

    trial_id: int
    config: Mapping[str, Any]
    status: TrialStatus = TrialStatus.PENDING
    curve: tuple[Point, ...] = ()
    cost: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    created_at: float = 0.0

    @property
    def last_step(self) -> int:
        """The last step reported (0 before any report)."""
        return self.curve[-1][0] if self.curve else 0

    def value(self, metric: str, step: int | None = None) -> float | None:
        """The metric at ``step`` (the last reported step by default), or None if not reported there."""
        if not self.curve:
            return None
        if step is None:
            return self.curve[-1][1].get(metric)
        for s, m in reversed(self.curve):
            if s == step:
                return m.get(metric)
            if s < step:
                return None
        return None

    def best_value(self, metric: str, mode: str) -> float | None:
        vals = [m[metric] for _, m in self.curve if metric in m and math.isfinite(m[metric])]
        if not vals:
            return None
        return min(vals) if mode == "min" else max(vals)

    def with_points(self, points: tuple[Point, ...] | list[Point]) -> Trial:
        """This trial with ``points`` appended; points at or before the last step are ignored (a rerun segment)."""
        last = self.last_step
        new = tuple((int(s), dict(m)) for s, m in points if int(s) > last)
        return replace(self, curve=self.curve + new) if new else self

    def with_cost(self, cost: Mapping[str, float]) -> Trial:
        merged = dict(self.cost)
        for k, v in cost.items():
            merged[k] = merged.get(k, 0.0) + float(v)
        return replace(self, cost=merged)


@dataclass(frozen=True)
class Segment:
    """A unit of work for an executor: run ``config`` from the trial's last checkpoint up to ``stop_step``.

    ``start_step`` is the last step the sweep has recorded for the trial; reports at or before it are ignored, so
    a trainable without checkpoints simply trains again from the start.
    """

    trial_id: int
    config: Mapping[str, Any]
    start_step: int
    stop_step: int
    attempt: int = 0


@dataclass(frozen=True)
class SegmentResult:
    """What an executor returns for a segment.

    Attributes:
        points: new ``(step, metrics)`` points, in order.
        cost: ``wall_seconds`` of the segment plus costs the trainable reported.
        error: a one-line reason followed by the traceback when the user code raised, else None.
        finished: the trainable returned before ``stop_step`` (it decided it is done).
        worker_died: the worker process died; the executor has already retried as often as allowed.
        worker: the executor's name for the worker that ran it (node and GPU ids where known).
    """

    segment: Segment
    points: tuple[Point, ...] = ()
    cost: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    finished: bool = False
    worker_died: bool = False
    worker: Mapping[str, Any] = field(default_factory=dict)
