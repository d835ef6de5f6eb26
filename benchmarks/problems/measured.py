"""Real training run in-process, with its measured CPU time as the simulated duration.

:class:`~hpo.executors.simulated.SimulatedExecutor` runs a plain trainable in-process but charges each reported
step a *sampled* duration. For real problems the cost is the training itself, so :class:`MeasuredTrainable` wraps a
session-API trainable as a ``SimulatedTrainable``: ``simulate`` runs one segment with :func:`hpo.session.run_segment`
(the same runner the Ray workers use, checkpoints included) and returns the points with the segment's measured
seconds (or a deterministic function of the config, e.g. FLOPs, see ``duration_of``) as its duration. The virtual
clock therefore advances as a real cluster's would, one worker per simulated slot.

Measured seconds are the process's CPU time over the segment (``time.process_time``), not its wall time: the
trainables run one thread, so on an idle machine the two agree, but CPU time does not grow when other jobs share
the cores (benchmarks run in parallel, and on a shared machine), so the cost of a config stays close to constant.

Checkpoints live in memory, keyed by config: a segment resumes from the checkpoint saved at its ``start_step``.
Trials with equal configs share it, which is harmless because the trainables here are deterministic for a config.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hpo.checkpoint import Checkpoint
from hpo.session import run_segment
from hpo.trial import Point, Segment

__all__ = ["MeasuredTrainable", "SegmentFailed"]


class SegmentFailed(RuntimeError):
    """The trainable raised or reported a non-finite metric in this segment."""


class _MemoryCheckpoints:
    """The :class:`hpo.checkpoint.CheckpointStore` calls ``run_segment`` makes, in memory, for the selected config."""

    def __init__(self) -> None:
        self._latest: dict[str, Checkpoint] = {}
        self._key = ""
        self._start = 0

    def select(self, key: str, start_step: int) -> None:
        self._key, self._start = key, start_step

    def latest(self, trial_id: int, max_step: int | None = None) -> Checkpoint | None:
        ckpt = self._latest.get(self._key)
        return ckpt if ckpt is not None and ckpt.step == self._start else None

    def save(self, trial_id: int, step: int, state: Any, points: Sequence[tuple[int, dict]] = ()) -> None:
        # state dicts reference live tensors that keep training after the report: copy them now
        self._latest[self._key] = Checkpoint(int(step), copy.deepcopy(state), ())

    def drop(self, key: str) -> None:
        self._latest.pop(key, None)


class MeasuredTrainable:
    """A session-API trainable as a ``SimulatedTrainable`` whose duration is the measured CPU time.

    Args:
        fn: the trainable (``hpo.report`` with checkpoints for multi-fidelity).
        metric: the sweep's metric.
        max_step: the fidelity's full budget (1 without fidelity); a trial's checkpoint is dropped when it ends.
        duration_of: ``(config, start_step, stop_step, measured_seconds) -> seconds``; default: the measured time.

    Example:
        >>> import hpo
        >>> def train(config):
        ...     for step in range(1, config["epoch"] + 1):
        ...         hpo.report({"loss": config["x"] / step}, step=step)
        >>> t = MeasuredTrainable(train, "loss", max_step=4)
        >>> points, seconds = t.simulate({"x": 1.0, "epoch": 4}, 0, 2)
        >>> [(s, m["loss"]) for s, m in points], seconds < 1.0
        ([(1, 1.0), (2, 0.5)], True)
    """

    def __init__(
        self,
        fn: Callable[[dict[str, Any]], Any],
        metric: str,
        max_step: int = 1,
        duration_of: Callable[[dict[str, Any], int, int, float], float] | None = None,
    ) -> None:
        self.fn, self.metric, self.max_step, self.duration_of = fn, metric, int(max_step), duration_of
        self._store = _MemoryCheckpoints()
        self._last_failure = 0.0

    def simulate(self, config: dict[str, Any], start_step: int, stop_step: int) -> tuple[list[Point], float]:
        key = repr(sorted(config.items(), key=lambda kv: kv[0]))
        self._store.select(key, start_step)
        cpu0 = time.process_time()
        result = run_segment(self.fn, Segment(0, config, start_step, stop_step), self.metric, self._store)
        measured = time.process_time() - cpu0
        duration = measured if self.duration_of is None else float(
            self.duration_of(config, start_step, stop_step, measured)
        )
        if result.error is not None or stop_step >= self.max_step or result.finished:
            self._store.drop(key)
        if result.error is not None:
            self._last_failure = duration
            raise SegmentFailed(result.error.splitlines()[0])
        return list(result.points), duration

    def failure_duration(self, rng: np.random.Generator) -> float:
        """The executor's ``duration`` callable: a failed segment lasts what it was measured to last."""
        return self._last_failure
