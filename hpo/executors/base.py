"""The executor interface: run segments on a fixed number of slots, report them as they end."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from hpo.checkpoint import CheckpointStore
from hpo.trial import Segment, SegmentResult

__all__ = ["Executor"]


class Executor(abc.ABC):
    """Runs segments on ``num_slots`` workers.

    Lifecycle: :meth:`start` binds the trainable, the sweep's metric and checkpoint store and brings workers up;
    the orchestrator then :meth:`submit`\\ s at most ``num_slots`` segments at a time and calls :meth:`wait` for the
    next ones to end; :meth:`shutdown` ends everything, dropping segments in flight (they resume from their last
    checkpoint when the sweep resumes). :meth:`now` is the executor's clock: wall time, or virtual time for a
    simulation.
    """

    num_slots: int

    @abc.abstractmethod
    def start(self, fn: Callable[[dict[str, Any]], Any], metric: str, store: CheckpointStore | None) -> None:
        """Bind the trainable and start the workers."""

    @abc.abstractmethod
    def submit(self, segment: Segment) -> None:
        """Start a segment on a free slot (the orchestrator never submits more than ``num_slots``)."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> list[SegmentResult]:
        """Block until at least one segment ends (or ``timeout`` seconds pass) and return those that ended."""

    @abc.abstractmethod
    def now(self) -> float:
        """Seconds on the executor's clock."""

    @property
    @abc.abstractmethod
    def num_running(self) -> int:
        """Segments submitted and not yet returned by :meth:`wait`."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Stop the workers; segments in flight are dropped."""
